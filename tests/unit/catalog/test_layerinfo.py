import gzip
import io
import json
import os
import tarfile
from datetime import UTC, datetime

import pytest

from trivy_mirror.catalog.layerinfo import LayerInfoError, LayerInfoReader


def tar_gz(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


META = json.dumps({"Version": 2, "NextUpdate": "2026-11-26T18:11:37.696263532Z",
                   "UpdatedAt": "2026-11-25T12:11:37.696263932Z", "DownloadedAt": "0001-01-01T00:00:00Z"}).encode()


async def read(layer: bytes, chunk: int = 7000) -> object:
    reader = LayerInfoReader()
    try:
        for i in range(0, len(layer), chunk):
            await reader.feed(layer[i : i + chunk])
        return await reader.result()
    finally:
        reader.close()


async def test_reads_metadata_after_a_large_db() -> None:
    layer = tar_gz([("trivy.db", os.urandom(3 * 1024 * 1024)), ("metadata.json", META)])
    metadata = await read(layer, 65536)
    assert metadata.version == 2  # type: ignore[attr-defined]
    assert metadata.updated_at == datetime(2026, 11, 25, 12, 11, 37, 696263, UTC)  # type: ignore[attr-defined]
    assert metadata.next_update == datetime(2026, 11, 26, 18, 11, 37, 696263, UTC)  # type: ignore[attr-defined]


async def test_metadata_first_stops_early() -> None:
    layer = tar_gz([("./metadata.json", META), ("trivy.db", os.urandom(1024 * 1024))])
    assert (await read(layer)).version == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("layer", [
    tar_gz([("trivy.db", b"x")]),
    tar_gz([("sub/metadata.json", META)]),
    gzip.compress(b"not a tar at all" * 100),
    b"not gzip",
    tar_gz([("metadata.json", b"{not json")]),
])
async def test_refuses_layers_without_readable_metadata(layer: bytes) -> None:
    with pytest.raises(LayerInfoError):
        await read(layer)


async def test_truncated_layer() -> None:
    layer = tar_gz([("trivy.db", os.urandom(200000)), ("metadata.json", META)])
    with pytest.raises(LayerInfoError):
        await read(layer[: len(layer) // 2])
