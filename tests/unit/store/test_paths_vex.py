import pytest

from trivy_mirror.errors import InvalidReference
from trivy_mirror.store.paths import check_repository


def test_vex_directory_is_reserved_for_vex_repositories() -> None:
    with pytest.raises(InvalidReference, match="reserved"):
        check_repository("vex/vexhub")
    assert check_repository("aquasec/vex") == "aquasec/vex"
