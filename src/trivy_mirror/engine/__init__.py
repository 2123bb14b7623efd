"""The generic copy engine between any two targets (:mod:`.copier`) and its one event stream (:mod:`.events`).

It knows nothing about Trivy: :mod:`trivy_mirror.catalog` decides what may be published, through the
engine's ``before_publish`` hook.
"""
