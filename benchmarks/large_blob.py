"""Memory of a large blob's round trip through an OCI registry: streamed, never held whole.

Makes a sparse file of ``--size`` bytes, uploads it as a blob (chunked PATCHes) to the registry
``--registry HOST:PORT`` (TLS verified against ``--ca-bundle``; credentials from
``MLOPS_REGISTRY_USERNAME``/``MLOPS_REGISTRY_PASSWORD`` or Docker's configuration), downloads
it back into a file, verified against its digest, and prints the process's peak resident memory
(``VmHWM``) beside its peer in the same run: the same process after its imports, before the
blob was touched. The blob stays in the registry (use a registry of your own, e.g. the one
tests/deploy/test_deploy_registry_auth.py starts).

Run (after ``bash scripts/services.sh``; source its env file)::

    MLOPS_REGISTRY_USERNAME=$MLOPS_TEST_REGISTRY_USER \\
    MLOPS_REGISTRY_PASSWORD=$MLOPS_TEST_REGISTRY_PASSWORD \\
    .venv/bin/python benchmarks/large_blob.py --registry "$MLOPS_TEST_REGISTRY_TLS" \\
        --ca-bundle "$MLOPS_TEST_CA" --size 2GiB

The last line is JSON: ``size``, ``digest``, ``baseline_rss``, ``peak_rss`` (bytes), ``chunks``,
``upload_s``, ``download_s``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pytest_mlops.deploy.distribution import DistributionClient, sha256_file
from pytest_mlops.deploy.transport import HttpOptions, TlsOptions


def parse_size(text: str) -> int:
    units = {"GiB": 1 << 30, "MiB": 1 << 20, "KiB": 1 << 10, "": 1}
    for suffix, factor in units.items():
        if suffix and text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def peak_rss() -> int:
    """This process's peak resident memory, in bytes: ``VmHWM`` (Linux; it starts afresh at
    ``exec``, where ``ru_maxrss`` keeps the parent's peak), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def round_trip(client: DistributionClient, size: int, folder: Path) -> dict[str, float | int | str]:
    source = folder / "blob"
    with source.open("wb") as handle:
        handle.truncate(size)  # sparse: zeros, no disk blocks
    started = time.perf_counter()
    digest, sent = client.upload_file(source)
    uploaded = time.perf_counter()
    back = folder / "back"
    received = client.download(digest, back)
    downloaded = time.perf_counter()
    if sent != size or received != size or sha256_file(back)[0] != digest:
        raise SystemExit(f"the blob came back different: {sent}, {received} bytes")
    return {
        "digest": digest,
        "upload_s": round(uploaded - started, 1),
        "download_s": round(downloaded - uploaded, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="HOST:PORT")
    parser.add_argument("--ca-bundle", help="PEM file of the CA the registry's certificate has")
    parser.add_argument("--repository", default=f"large-blob-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--size", default="2GiB", help="bytes, or with KiB/MiB/GiB")
    parser.add_argument("--dir", help="where the file and its copy go (default: a temporary one)")
    args = parser.parse_args()
    size = parse_size(args.size)
    tls = TlsOptions(Path(args.ca_bundle), "--ca-bundle") if args.ca_bundle else TlsOptions()
    client = DistributionClient(args.registry, args.repository, HttpOptions(tls=tls, timeout=120.0))
    client.base()  # the connection and its TLS context: part of the baseline
    baseline = peak_rss()
    with tempfile.TemporaryDirectory(prefix="mlops-large-blob-", dir=args.dir) as tmp:
        figures = round_trip(client, size, Path(tmp))
    peak = peak_rss()
    print(f"blob: {size / (1 << 30):.2f} GiB to {args.registry}/{args.repository} and back")
    print(
        f"  upload {figures['upload_s']} s ({client.stats.chunks} chunks), download {figures['download_s']} s"
    )
    print(
        f"  peak RSS {peak / (1 << 20):.0f} MiB; after imports and connecting {baseline / (1 << 20):.0f} MiB"
    )
    print(
        f"  peak RSS / blob size: {peak / size:.3f}; growth while streaming: {(peak - baseline) / (1 << 20):.0f} MiB"
    )
    out = {
        "size": size,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "chunks": client.stats.chunks,
        **figures,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
