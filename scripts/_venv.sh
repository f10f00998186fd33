# Sourced by scripts/run and scripts/test: make .venv with the project installed in it.
# A fresh Debian has python3 but maybe not its venv module; as root we install it.
ensure_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv 2>/dev/null; then
      rm -rf .venv
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      python3 -m venv .venv
    fi
  fi
  # Install only when pyproject.toml changed since the last install with these extras (the project
  # is installed editable, so changes to its code need no reinstall): starting stays quick and
  # works without a network once installed.
  local stamp=".venv/.installed${extras:+-${extras//[^a-z]/}}"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras}"
  echo "$want" > "$stamp"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
