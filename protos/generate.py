"""Generate the code and descriptor set that derive from the .proto files.

Outputs, all written below the repository root:

- protos/python/src/aetus/<area>/v1/: Python messages, type stubs and gRPC stubs,
  with type stubs for the gRPC stubs from mypy-protobuf's protoc-gen-mypy_grpc.
- envoy/aetus.pb: the descriptor set that Envoy's gRPC-JSON transcoder reads.

Run ``python protos/generate.py`` after editing a .proto file, and
``python protos/generate.py --check`` to fail when the committed outputs are stale.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PYTHON_OUT = PROTO_ROOT / "python" / "src"
DESCRIPTOR_OUT = ROOT / "envoy" / "aetus.pb"
# Types that travel only inside google.protobuf.Any: the server packs them
# into the details of every error status. Envoy's transcoder must resolve them
# to print an error as JSON, and without them it sends the error with an
# empty body.
DESCRIPTOR_EXTRA_FILES = ["google/rpc/error_details.proto"]


def _include_paths() -> list[Path]:
    # google/protobuf/*.proto ship with grpcio-tools; google/api and google/rpc
    # ship with googleapis-common-protos, whose files sit beside the google
    # package in site-packages.
    import google.api

    wkt = Path(grpc_tools.__file__).parent / "_proto"
    googleapis = Path(google.api.__path__[0]).parent.parent
    return [PROTO_ROOT, wkt, googleapis]


def _proto_files() -> list[str]:
    return sorted(
        str(path.relative_to(PROTO_ROOT))
        for path in (PROTO_ROOT / "aetus").rglob("*.proto")
    )


def _mypy_grpc_plugin() -> Path:
    # mypy-protobuf installs the plugin as a console script beside this
    # interpreter; protoc would otherwise look for it on PATH.
    plugin = Path(sysconfig.get_path("scripts")) / "protoc-gen-mypy_grpc"
    if not plugin.is_file():
        raise SystemExit(
            f"protoc plugin {plugin} is missing; run `make install`, which "
            "installs mypy-protobuf from requirements-test.txt"
        )
    return plugin


def _run_protoc(args: list[str]) -> None:
    includes = [f"-I{path}" for path in _include_paths()]
    code = protoc.main(["grpc_tools.protoc", *includes, *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code} for {args!r}")


def generate(python_out: Path, descriptor_out: Path) -> None:
    """Write the Python code to ``python_out`` and the descriptor set."""
    files = _proto_files()
    python_out.mkdir(parents=True, exist_ok=True)
    _run_protoc(
        [
            f"--python_out={python_out}",
            f"--pyi_out={python_out}",
            f"--grpc_python_out={python_out}",
            f"--plugin=protoc-gen-mypy_grpc={_mypy_grpc_plugin()}",
            "--mypy_grpc_opt=quiet",
            f"--mypy_grpc_out={python_out}",
            *files,
        ]
    )
    for proto in files:
        package_dir = python_out / Path(proto).parent
        (package_dir / "__init__.py").touch()
    descriptor_out.parent.mkdir(parents=True, exist_ok=True)
    _run_protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptor_out}",
            *files,
            *DESCRIPTOR_EXTRA_FILES,
        ]
    )


def _differences(expected: Path, actual: Path) -> list[str]:
    found: list[str] = []
    expected_files = {
        p.relative_to(expected) for p in expected.rglob("*") if p.is_file()
    }
    actual_files = {
        p.relative_to(actual)
        for p in actual.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    for name in sorted(expected_files | actual_files):
        left, right = expected / name, actual / name
        if (
            not left.exists()
            or not right.exists()
            or not filecmp.cmp(left, right, shallow=False)
        ):
            found.append(str(name))
    return found


def check() -> list[str]:
    """Return the generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_python = Path(tmp) / "python"
        fresh_descriptor = Path(tmp) / "aetus.pb"
        generate(fresh_python, fresh_descriptor)
        stale = [
            f"protos/python/src/{name}"
            for name in _differences(fresh_python / "aetus", PYTHON_OUT / "aetus")
        ]
        if not DESCRIPTOR_OUT.exists() or not filecmp.cmp(
            fresh_descriptor, DESCRIPTOR_OUT, shallow=False
        ):
            stale.append("envoy/aetus.pb")
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the committed outputs differ from a fresh generation",
    )
    args = parser.parse_args()
    if args.check:
        stale = check()
        if stale:
            print("stale generated files (run: python protos/generate.py):")
            for name in stale:
                print(f"  {name}")
            return 1
        print("generated files are up to date")
        return 0
    generated = PYTHON_OUT / "aetus"
    if generated.exists():
        shutil.rmtree(generated)
    generate(PYTHON_OUT, DESCRIPTOR_OUT)
    print(f"wrote {generated.relative_to(ROOT)} and {DESCRIPTOR_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
