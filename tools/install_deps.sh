#!/usr/bin/env bash
# Installs the Debian packages tether builds, tests and demos with (as root, or via sudo).
# Nothing else is downloaded, at build time or at run time.
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libeigen3-dev libstb-dev doctest-dev nlohmann-json3-dev libcli11-dev
          zlib1g-dev python3-torch python3-torchvision dataset-fashion-mnist)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  echo "== installing Debian packages: ${packages[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
