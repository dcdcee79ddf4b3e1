#!/usr/bin/env bash
# Fill .whl (ignored by git) with the wheels a lent GPU machine lacks (its image has torch, transformers, numpy, scipy,
# matplotlib, typer, rich; not the service's packages), for CPython 3.12 on x86_64, at the versions installed here.
# Then: device run with carry [".whl"] and `bash benchmarks/gpu_suite.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
platforms=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_28_x86_64 manylinux_2_34_x86_64; do
  platforms+=(--platform "$p")
done
for name in optuna cmaes colorlog sqlalchemy greenlet alembic mako pydantic pydantic-core pydantic-settings \
  annotated-types typing-inspection python-dotenv psycopg psycopg-binary fastapi starlette uvicorn python-multipart \
  typing-extensions; do
  version=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "$name${version:+==$version}"
done
du -sh .whl
