#!/bin/sh
# versitygw.sh installs versitygw, the S3 server the S3 backend's tests run
# against, and can start one for manual testing.
#
#   scripts/versitygw.sh install        install v1.8.0 into $(go env GOPATH)/bin if missing
#   scripts/versitygw.sh serve DIR PORT start a server on 127.0.0.1:PORT storing under DIR
#                                        (foreground; root credentials below)
#
# install is idempotent: a versitygw of the pinned version already on PATH or
# in GOPATH/bin is kept. The tests (internal/repo/backend/s3,
# cmd/bulwark/s3_cli_test.go) look for the binary in $VERSITYGW, then on PATH,
# then in $(go env GOPATH)/bin, and start their own servers on random
# loopback ports; they do not need `serve`.
set -eu

VERSION=v1.8.0
MODULE=github.com/versity/versitygw/cmd/versitygw

gobin() {
	bin=$(go env GOBIN)
	[ -n "$bin" ] || bin="$(go env GOPATH)/bin"
	echo "$bin"
}

find_bin() {
	if [ -n "${VERSITYGW:-}" ] && [ -x "$VERSITYGW" ]; then
		echo "$VERSITYGW"
	elif command -v versitygw >/dev/null 2>&1; then
		command -v versitygw
	elif [ -x "$(gobin)/versitygw" ]; then
		echo "$(gobin)/versitygw"
	fi
}

install_gw() {
	bin=$(find_bin)
	# `go version -m` prints the module version the binary was built from.
	if [ -n "$bin" ] && go version -m "$bin" 2>/dev/null | grep -q "mod[[:space:]]*github.com/versity/versitygw[[:space:]]*$VERSION"; then
		echo "versitygw $VERSION: $bin"
		return 0
	fi
	echo "installing versitygw $VERSION (go install $MODULE@$VERSION)..."
	go install "$MODULE@$VERSION"
	echo "versitygw $VERSION: $(gobin)/versitygw"
}

case "${1:-install}" in
install)
	install_gw
	;;
serve)
	[ $# -eq 3 ] || { echo "usage: $0 serve DIR PORT" >&2; exit 2; }
	install_gw >/dev/null
	mkdir -p "$2/data" "$2/versions"
	ROOT_ACCESS_KEY=${ROOT_ACCESS_KEY:-bulwarktest} ROOT_SECRET_KEY=${ROOT_SECRET_KEY:-bulwarktestsecret} \
		exec "$(find_bin)" --port "127.0.0.1:$3" posix --versioning-dir "$2/versions" "$2/data"
	;;
*)
	echo "usage: $0 [install | serve DIR PORT]" >&2
	exit 2
	;;
esac
