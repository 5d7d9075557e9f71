#!/bin/sh
# Debian/Ubuntu packages the tests and the demo need: a real sshd per mock host, real promtool and Prometheus,
# python3-venv (mock hosts create real venvs), iproute2 (network namespaces), nftables (the fake UpCloud firewall
# filters in each mock host's namespace), systemd (systemd-analyze verify checks the engine's unit file).
# Installs only what is missing.
set -eu
missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$missing nftables"
command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-client"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
[ -z "$missing" ] && exit 0
echo "installing system packages:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
