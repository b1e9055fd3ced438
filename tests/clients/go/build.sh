#!/usr/bin/env bash
# Builds the Go test clients into OUT: OUT/franz (franz-go's kgo + kadm) and OUT/sarama
# (IBM/sarama), from go.mod + go.sum; the modules come from the Go module proxy into the
# Go module cache, which makes a rebuild quick.  See ../builds.py.
set -euo pipefail
out=${1:?usage: build.sh OUT}
cd "$(dirname "$0")"
go build -mod=readonly -buildvcs=false -trimpath -o "$out/" ./cmd/franz ./cmd/sarama
