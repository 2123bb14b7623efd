"""An in-memory OCI Distribution server on aiohttp, for unit tests of the registry client only.

It implements just enough of the API (manifests, blobs with ranges, monolithic and chunked uploads, mounts,
paginated tag lists) and records every request. Tests inject misbehaviour with ``hooks``: a hook sees each
request first and may answer it itself.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

Hook = Callable[[web.Request], Awaitable[web.StreamResponse | None]]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes = b""


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"errors": [{"code": code, "message": message or code.lower().replace("_", " ")}]})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def manifest_for(config: bytes, layer: bytes, annotation: str = "") -> bytes:
    """A trivy-db shaped manifest (compact JSON, as a registry stores it)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.aquasec.trivy.config.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip", "digest": digest_of(layer),
                    "size": len(layer), "annotations": {"org.opencontainers.image.title": "db.tar.gz"}}],
        "annotations": {"note": annotation},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class FakeRegistry:
    blobs: dict[str, bytes] = field(default_factory=dict)
    links: set[tuple[str, str]] = field(default_factory=set)
    """(repository, digest) pairs: which repositories hold which blobs (for mounts and existence)."""
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    uploads: dict[str, tuple[str, bytearray]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    chunk_min: int | None = None
    reject_monolithic: bool = False
    page_size: int | None = None
    absolute_locations: bool = False

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        self.blobs[digest] = data
        self.links.add((repository, digest))
        return digest

    def put_manifest(self, repository: str, tag: str, data: bytes, media_type: str = OCI_MANIFEST) -> str:
        digest = digest_of(data)
        self.manifests[(repository, digest)] = (data, media_type)
        self.manifests[(repository, tag)] = (data, media_type)
        return digest

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and contains in s.path]

    def app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
            body = await request.read() if request.method in ("PUT", "PATCH", "POST") else b""
            self.seen.append(Seen(request.method, request.path, dict(request.query), CIMultiDict(request.headers),
                                  body))
            for hook in self.hooks:
                answer = await hook(request)
                if answer is not None:
                    return answer
            return await handler(request)

        app = web.Application(middlewares=[record], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v2/", self._ping)
        app.router.add_post(r"/v2/{name:.+}/blobs/uploads/", self._start_upload)
        app.router.add_route("*", r"/v2/{name:.+}/blobs/uploads/{id}", self._upload)
        app.router.add_route("*", r"/v2/{name:.+}/blobs/{digest}", self._blob)
        app.router.add_route("*", r"/v2/{name:.+}/manifests/{ref}", self._manifest)
        app.router.add_get(r"/v2/{name:.+}/tags/list", self._tags)
        return app

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    def _location(self, request: web.Request, upload_id: str) -> str:
        path = f"/v2/{request.match_info['name']}/blobs/uploads/{upload_id}?_state=s%2Bt%3D{len(self.seen)}"
        return f"http://{request.host}{path}" if self.absolute_locations else path

    async def _start_upload(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source and (source, mount) in self.links:
            self.links.add((name, mount))
            return web.Response(status=201, headers={"Docker-Content-Digest": mount})
        upload_id = str(uuid.uuid4())
        self.uploads[upload_id] = (name, bytearray())
        headers = {"Location": self._location(request, upload_id), "Range": "0-0"}
        if self.chunk_min is not None:
            headers["OCI-Chunk-Min-Length"] = str(self.chunk_min)
        return web.Response(status=202, headers=headers)

    async def _upload(self, request: web.Request) -> web.Response:
        upload_id = request.match_info["id"]
        if upload_id not in self.uploads or request.query.get("_state", "").split("=")[0] != "s+t":
            return oci_error(404, "BLOB_UPLOAD_UNKNOWN")
        name, data = self.uploads[upload_id]
        body = self.seen[-1].body
        if request.method == "DELETE":
            del self.uploads[upload_id]
            return web.Response(status=204)
        if request.method == "PATCH":
            start, _, end = request.headers.get("Content-Range", "").partition("-")
            if not start.isdigit() or int(start) != len(data) or int(end) != len(data) + len(body) - 1:
                return oci_error(416, "BLOB_UPLOAD_INVALID", "bad range")
            data += body
            headers = {"Location": self._location(request, upload_id), "Range": f"0-{len(data) - 1}"}
            return web.Response(status=202, headers=headers)
        if request.method == "PUT":
            if body and self.reject_monolithic:
                return oci_error(405, "UNSUPPORTED", "monolithic uploads are not supported")
            data += body
            digest = request.query.get("digest", "")
            if digest_of(bytes(data)) != digest:
                return oci_error(400, "DIGEST_INVALID")
            del self.uploads[upload_id]
            self.blobs[digest] = bytes(data)
            self.links.add((name, digest))
            return web.Response(status=201, headers={"Docker-Content-Digest": digest})
        return web.Response(status=405)

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        name, digest = request.match_info["name"], request.match_info["digest"]
        if (name, digest) not in self.links:
            return oci_error(404, "BLOB_UNKNOWN")
        data = self.blobs[digest]
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(data)), "Docker-Content-Digest": digest})
        wanted = request.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[6:-1])
            return web.Response(status=206, body=data[start:], headers={
                "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                "Content-Type": "application/octet-stream"})
        return web.Response(body=data, content_type="application/octet-stream")

    async def _manifest(self, request: web.Request) -> web.Response:
        name, ref = request.match_info["name"], request.match_info["ref"]
        if request.method == "PUT":
            body = self.seen[-1].body
            self.put_manifest(name, ref, body, request.headers.get("Content-Type", ""))
            return web.Response(status=201, headers={"Docker-Content-Digest": digest_of(body)})
        found = self.manifests.get((name, ref))
        if found is None:
            return oci_error(404, "MANIFEST_UNKNOWN")
        data, media_type = found
        headers = {"Docker-Content-Digest": digest_of(data), "Content-Type": media_type}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(data))})
        return web.Response(body=data, headers=headers)

    async def _tags(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        tags = sorted({ref for repo, ref in self.manifests if repo == name and ":" not in ref})
        if not tags and not any(repo == name for repo, _ in self.manifests):
            return oci_error(404, "NAME_UNKNOWN")
        last = request.query.get("last")
        if last is not None:
            tags = [t for t in tags if t > last]
        n = int(request.query.get("n", self.page_size or len(tags) or 1))
        page = tags[:n]
        headers = {}
        if len(tags) > n:
            headers["Link"] = f'</v2/{name}/tags/list?last={page[-1]}&n={n}>; rel="next"'
        return web.json_response({"name": name, "tags": page}, headers=headers)
