#!/usr/bin/env bash
# Fails if a tracked text file refers to the data folder beside a developer's clone (../shared) or to
# an absolute path of one machine (/work/…, /root/…, /home/…, /Users/…): a clone must carry, or name,
# everything it reads. Exempt: .ci/run, which is CI's own description of the machine it runs on, this
# script, and the fuzz inputs (bytes, not references).
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\.\./shared|(^|[^A-Za-z0-9_.~-])/(work|root|home|Users)/'
if git grep -I -n -E "$pattern" -- . ':!.ci/run' ':!.ci/no-machine-paths.sh' ':!fuzz/corpus' ':!fuzz/seeds' ':!fuzz/regressions'; then
  echo "no-machine-paths: the lines above name ../shared or a machine's absolute path; use tests/data/ or FTUSCOPE_DATA" >&2
  exit 1
fi
echo "no-machine-paths: no tracked file names ../shared or a machine path"
