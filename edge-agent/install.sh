#!/bin/sh
# Installs the Tidemark agent on this machine: the single-file agent, its configuration and a
# systemd unit; enrolls the machine with the control plane (docs/agent-install.md).
#
#   sh install.sh --control-plane URL --key KEY --disk PATH [--disk PATH ...] [options]
#   sh install.sh --uninstall
#
# Everything it creates is listed in a manifest, so that --uninstall removes exactly that and
# nothing else. --root DIR installs into DIR as if it were / (nothing is started there).
set -euf  # -f: disk paths and commands are never globbed

PROG=install.sh
BUNDLE_NAME=tidemark-agent.mjs
UNIT_NAME=tidemark-agent.service
# Paths on the installed system (under --root when given).
LIB_DIR=/opt/tidemark
CONF_DIR=/etc/tidemark
CONF_FILE=$CONF_DIR/agent.env
UNIT_DIR=/etc/systemd/system
UNIT_FILE=$UNIT_DIR/$UNIT_NAME
STATE_PARENT=/var/lib/tidemark
STATE_DIR=$STATE_PARENT/agent
MANIFEST=$STATE_PARENT/agent-install.manifest
KEPT_DIRS=.install-dirs
NODE_MIN_MAJOR=20
NODE_MIN_MINOR=10

usage() {
  cat <<EOF
Usage: $PROG --control-plane URL (--key KEY | --key-file FILE|-) --disk PATH [--disk PATH ...] [options]
       $PROG --uninstall [--keep-state] [--root DIR]

Installs the Tidemark agent: $LIB_DIR/$BUNDLE_NAME, $CONF_FILE and the
systemd unit $UNIT_FILE; enrolls this machine with the control plane
using a registration key (kept nowhere: the machine's own credential goes to $STATE_DIR,
mode 0600); then enables and starts the unit when systemd is running.

  --control-plane URL   the control plane, e.g. https://tidemark.example:7400
  --key KEY             a registration key (tidemark up prints one; an admin makes one with
                        POST /api/v1/vaults/{id}/registration-keys)
  --key-file FILE       read the key from FILE ('-': standard input) instead
  --disk PATH           a disk to protect: block device or image file (repeat for more)
  --machine NAME        this machine's name in Tidemark (default: the short host name)
  --site NAME           its site (default primary)
  --mode scan|tap       capture mode (default scan)
  --interval D          scan: time between scans (default 60, e.g. 5m)
  --nbd HOST:PORT       tap: where the agent serves the disks over NBD
  --freeze-cmd CMD      scan: run before each scan (e.g. 'fsfreeze -f /srv')
  --thaw-cmd CMD        scan: run after each scan's reads
  --bundle FILE         the agent to install (default: $BUNDLE_NAME beside this script)
  --node PATH           the node binary, Node.js $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer (default: node in PATH)
  --root DIR            install into DIR as if it were / (staging and tests; starts nothing)
  --uninstall           stop and remove everything a previous install created
  --keep-state          with --uninstall: keep $STATE_DIR (the enrollment and replication state)
  -h, --help            this help
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  if [ $# -gt 1 ]; then printf '  hint: %s\n' "$2" >&2; fi
  exit 2
}

say() { printf '%s\n' "$*"; }

need_value() {
  [ $# -ge 2 ] || die "$1 needs a value" "see '$PROG --help'"
}

# --- arguments ---
ROOT=
CONTROL_PLANE=
KEY=
KEY_FILE=
DISKS=
MACHINE=
SITE=primary
MODE=scan
INTERVAL=
NBD=
FREEZE_CMD=
THAW_CMD=
BUNDLE=
NODE=
UNINSTALL=0
KEEP_STATE=0
while [ $# -gt 0 ]; do
  case $1 in
    --control-plane) need_value "$@"; CONTROL_PLANE=$2; shift 2 ;;
    --key) need_value "$@"; KEY=$2; shift 2 ;;
    --key-file) need_value "$@"; KEY_FILE=$2; shift 2 ;;
    --disk)
      need_value "$@"
      case $2 in
        *[[:space:]]*) die "disk path '$2' contains white space" "give the disk by a path without spaces (e.g. a /dev/disk/by-id link)" ;;
        /*) ;;
        *) die "disk path '$2' is not absolute" "give the full path, e.g. /dev/vdb or /var/lib/images/web-01.img" ;;
      esac
      DISKS="$DISKS $2"; shift 2 ;;
    --machine) need_value "$@"; MACHINE=$2; shift 2 ;;
    --site) need_value "$@"; SITE=$2; shift 2 ;;
    --mode) need_value "$@"; MODE=$2; shift 2 ;;
    --interval) need_value "$@"; INTERVAL=$2; shift 2 ;;
    --nbd) need_value "$@"; NBD=$2; shift 2 ;;
    --freeze-cmd) need_value "$@"; FREEZE_CMD=$2; shift 2 ;;
    --thaw-cmd) need_value "$@"; THAW_CMD=$2; shift 2 ;;
    --bundle) need_value "$@"; BUNDLE=$2; shift 2 ;;
    --node) need_value "$@"; NODE=$2; shift 2 ;;
    --root) need_value "$@"; ROOT=$2; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --keep-state) KEEP_STATE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1'" "see '$PROG --help'" ;;
  esac
done

if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT is not a directory" "create it first"
  ROOT=$(cd "$ROOT" && pwd)
  [ "$ROOT" = / ] && ROOT=
fi

# systemd is asked to act only on the real root, and only when it is the running init.
systemd_running() {
  [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# --- the manifest: one line per created path, "f PATH" (file), "d PATH" (directory, removed
# if empty), "s PATH" (state tree, removed whole); paths as on the installed system ---
record() { printf '%s %s\n' "$1" "$2" >>"$ROOT$MANIFEST.tmp"; }

# Creates each missing directory of $1 (outermost first), recording each one.
make_dirs() {
  _missing=
  _d=$1
  while [ ! -d "$ROOT$_d" ]; do
    _missing="$_d $_missing"
    _d=$(dirname "$_d")
  done
  for _d in $_missing; do mkdir -m 755 "$ROOT$_d"; done
  # Recorded once all exist: the manifest itself lives in the first one made.
  for _d in $_missing; do record d "$_d"; done
}

remove_listed() {
  _list=$1
  # Newest first: files before the directories that hold them.
  sed '1!G;h;$!d' "$_list" | while read -r kind path; do
    case $kind in
      f) rm -f "$ROOT$path" && say "  removed $path" ;;
      s)
        if [ "$KEEP_STATE" = 1 ]; then say "  kept $path (--keep-state)"
        else rm -rf "$ROOT$path" && say "  removed $path"; fi ;;
      d)
        if rmdir "$ROOT$path" 2>/dev/null; then say "  removed $path/"
        elif [ -d "$ROOT$path" ]; then
          say "  kept $path/ (not empty)"
          # Remembered with the kept state, so that the install that takes it over removes them later.
          if [ "$KEEP_STATE" = 1 ] && [ -d "$ROOT$STATE_DIR" ]; then printf 'd %s\n' "$path" >>"$ROOT$STATE_DIR/$KEPT_DIRS"; fi
        fi ;;
    esac
  done
}

if [ "$UNINSTALL" = 1 ]; then
  [ -f "$ROOT$MANIFEST" ] || die "no agent installed here ($ROOT$MANIFEST is missing)" "nothing to remove"
  if systemd_running; then
    systemctl disable --now "$UNIT_NAME" >/dev/null 2>&1 || true
    say "stopped and disabled $UNIT_NAME"
  fi
  say "removing the Tidemark agent${ROOT:+ from $ROOT}:"
  list=$(mktemp)
  mv "$ROOT$MANIFEST" "$list"
  remove_listed "$list"
  rm -f "$list"
  if systemd_running; then systemctl daemon-reload || true; fi
  say "the Tidemark agent is uninstalled."
  if [ "$KEEP_STATE" = 1 ]; then say "its state stays in $STATE_DIR; a later install with the same --machine reuses its enrollment."; fi
  exit 0
fi

# --- checks, before anything is written ---
[ -n "$CONTROL_PLANE" ] || die "--control-plane URL is required" "e.g. --control-plane https://tidemark.example:7400"
case $CONTROL_PLANE in
  http://*|https://*) ;;
  *) die "--control-plane must be an http:// or https:// URL, not '$CONTROL_PLANE'" ;;
esac
[ -n "$DISKS" ] || die "give at least one --disk PATH" "e.g. --disk /dev/vdb"
if [ -f "$ROOT$MANIFEST" ]; then
  die "the Tidemark agent is already installed${ROOT:+ in $ROOT}" "run '$PROG --uninstall${ROOT:+ --root $ROOT}' first"
fi
if [ -n "$KEY_FILE" ]; then
  [ -z "$KEY" ] || die "give --key or --key-file, not both"
  if [ "$KEY_FILE" = - ]; then IFS= read -r KEY || true
  else
    [ -r "$KEY_FILE" ] || die "cannot read --key-file $KEY_FILE"
    IFS= read -r KEY <"$KEY_FILE" || true
  fi
fi
if [ -z "$KEY" ] && [ ! -f "$ROOT$STATE_DIR/enrollment.json" ]; then
  die "a registration key is required: give --key KEY or --key-file FILE" "tidemark up prints one; an admin makes one with POST /api/v1/vaults/{id}/registration-keys"
fi
[ -n "$MACHINE" ] || MACHINE=$(hostname -s 2>/dev/null || hostname)
case $MACHINE in
  ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._-]*) die "invalid machine name '$MACHINE'" "give --machine NAME: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit" ;;
esac
[ "${#MACHINE}" -le 64 ] || die "machine name '$MACHINE' is longer than 64 characters"
case $MODE in
  scan) [ -n "$INTERVAL" ] || INTERVAL=60; [ -z "$NBD" ] || die "--nbd is for --mode tap" ;;
  tap) [ -n "$NBD" ] || die "--mode tap needs --nbd HOST:PORT" "e.g. --nbd 127.0.0.1:10809" ;;
  *) die "unknown --mode '$MODE'" "use --mode scan or --mode tap" ;;
esac
for d in $DISKS; do
  [ -e "$d" ] || die "disk $d does not exist" "give a block device or an image file that exists"
  [ -r "$d" ] || die "disk $d is not readable"
done

if [ -z "$BUNDLE" ]; then BUNDLE=$(dirname "$0")/$BUNDLE_NAME; fi
[ -f "$BUNDLE" ] || die "the agent bundle $BUNDLE is missing" "give --bundle FILE (npm run bundle-agent makes dist/agent/$BUNDLE_NAME)"

if [ -z "$NODE" ]; then
  NODE=$(command -v node 2>/dev/null) || die "node is not installed (or not in PATH)" "install Node.js $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer, or give --node PATH"
fi
case $NODE in /*) ;; *) NODE=$(command -v "$NODE" 2>/dev/null) || die "--node $NODE not found" ;; esac
[ -x "$NODE" ] || die "node binary $NODE is not executable" "install Node.js $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer, or give --node PATH"
NODE_VERSION=$("$NODE" -e 'process.stdout.write(process.versions.node)' 2>/dev/null) || die "$NODE does not run" "install Node.js $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer, or give --node PATH"
NODE_MAJOR=${NODE_VERSION%%.*}
NODE_MINOR=${NODE_VERSION#*.}; NODE_MINOR=${NODE_MINOR%%.*}
if [ "$NODE_MAJOR" -lt "$NODE_MIN_MAJOR" ] || { [ "$NODE_MAJOR" -eq "$NODE_MIN_MAJOR" ] && [ "$NODE_MINOR" -lt "$NODE_MIN_MINOR" ]; }; then
  die "node $NODE_VERSION at $NODE is too old" "install Node.js $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer, or give --node PATH"
fi

# The control plane answers before anything is installed (any HTTP answer will do).
if ! why=$("$NODE" -e '
  fetch(process.argv[1] + "/api/v1/openapi.json", { signal: AbortSignal.timeout(10000) })
    .then(() => process.exit(0), (e) => { process.stderr.write(String(e.cause?.message ?? e.message)); process.exit(1); });
' "${CONTROL_PLANE%/}" 2>&1); then
  die "cannot reach the control plane at $CONTROL_PLANE ($why)" "check the URL and that this machine reaches it (firewall, proxy, DNS)"
fi

# --- install; on any failure, remove what was created so far ---
rollback() {
  if [ -f "$ROOT$MANIFEST.tmp" ]; then
    printf '%s: install failed; removing what it created\n' "$PROG" >&2
    _list=$(mktemp)
    mv "$ROOT$MANIFEST.tmp" "$_list"
    remove_listed "$_list" >&2
    rm -f "$_list"
  fi
}
on_exit() {
  _rc=$?
  if [ "$_rc" -ne 0 ]; then rollback; fi
  exit "$_rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

umask 022
make_dirs "$STATE_PARENT"
make_dirs "$LIB_DIR"
make_dirs "$CONF_DIR"
make_dirs "$UNIT_DIR"
# A state folder kept by 'uninstall --keep-state' is taken over (and its enrollment reused).
if [ -d "$ROOT$STATE_DIR" ]; then
  say "reusing the state in $STATE_DIR"
  if [ -f "$ROOT$STATE_DIR/$KEPT_DIRS" ]; then
    sed '1!G;h;$!d' "$ROOT$STATE_DIR/$KEPT_DIRS" >>"$ROOT$MANIFEST.tmp"
    rm -f "$ROOT$STATE_DIR/$KEPT_DIRS"
  fi
else
  mkdir -m 700 "$ROOT$STATE_DIR"
fi
record s "$STATE_DIR"

cp "$BUNDLE" "$ROOT$LIB_DIR/$BUNDLE_NAME.tmp"
chmod 755 "$ROOT$LIB_DIR/$BUNDLE_NAME.tmp"
mv "$ROOT$LIB_DIR/$BUNDLE_NAME.tmp" "$ROOT$LIB_DIR/$BUNDLE_NAME"
record f "$LIB_DIR/$BUNDLE_NAME"
cp "$0" "$ROOT$LIB_DIR/install.sh"
chmod 755 "$ROOT$LIB_DIR/install.sh"
record f "$LIB_DIR/install.sh"

# Enroll now, so that a bad key or an unknown site fails here and not later in the service.
say "enrolling $MACHINE with $CONTROL_PLANE"
set -- "$BUNDLE" agent --enroll-only --control-plane "$CONTROL_PLANE" --state "$ROOT$STATE_DIR" --site "$SITE" --machine "$MACHINE"
for d in $DISKS; do set -- "$@" --disk "$d"; done
if [ -n "$KEY" ]; then
  # The key goes through a file of mode 0600 in the state folder, never a command line others can read.
  (umask 077 && printf '%s\n' "$KEY" >"$ROOT$STATE_DIR/registration-key")
  set -- "$@" --key-file "$ROOT$STATE_DIR/registration-key"
fi
if ! "$NODE" "$@"; then
  rm -f "$ROOT$STATE_DIR/registration-key"
  die "enrollment with $CONTROL_PLANE failed (see above)" "check the registration key (it may have expired: make a new one); nothing was left installed"
fi
rm -f "$ROOT$STATE_DIR/registration-key"

# systemd's EnvironmentFile: one KEY=VALUE a line, values quoted.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"$`]/\\&/g')"; }
DISK_ARGS=
for d in $DISKS; do DISK_ARGS="$DISK_ARGS --disk $d"; done
{
  say "# Tidemark agent configuration, read by $UNIT_NAME (written by install.sh)."
  say "# After a change: systemctl restart $UNIT_NAME"
  say "TIDEMARK_CONTROL_PLANE=$(quote "${CONTROL_PLANE%/}")"
  say "TIDEMARK_MACHINE=$(quote "$MACHINE")"
  say "TIDEMARK_SITE=$(quote "$SITE")"
  say "TIDEMARK_STATE=$(quote "$STATE_DIR")"
  say "TIDEMARK_MODE=$(quote "$MODE")"
  say "TIDEMARK_INTERVAL=$(quote "$INTERVAL")"
  say "TIDEMARK_NBD=$(quote "$NBD")"
  say "TIDEMARK_FREEZE_CMD=$(quote "$FREEZE_CMD")"
  say "TIDEMARK_THAW_CMD=$(quote "$THAW_CMD")"
  say "TIDEMARK_DISK_ARGS=$(quote "${DISK_ARGS# }")"
} >"$ROOT$CONF_FILE.tmp"
chmod 640 "$ROOT$CONF_FILE.tmp"
mv "$ROOT$CONF_FILE.tmp" "$ROOT$CONF_FILE"
record f "$CONF_FILE"

cat >"$ROOT$UNIT_FILE.tmp" <<EOF
# Written by Tidemark's install.sh; removed by '$LIB_DIR/install.sh --uninstall'.
[Unit]
Description=Tidemark agent (replicates this machine's disks)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
EnvironmentFile=$CONF_FILE
ExecStart=$NODE $LIB_DIR/$BUNDLE_NAME agent --control-plane \${TIDEMARK_CONTROL_PLANE} --state \${TIDEMARK_STATE} --site \${TIDEMARK_SITE} --machine \${TIDEMARK_MACHINE} --mode \${TIDEMARK_MODE} --interval \${TIDEMARK_INTERVAL} --nbd \${TIDEMARK_NBD} --freeze-cmd \${TIDEMARK_FREEZE_CMD} --thaw-cmd \${TIDEMARK_THAW_CMD} \$TIDEMARK_DISK_ARGS
Restart=on-failure
RestartSec=10
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
EOF
mv "$ROOT$UNIT_FILE.tmp" "$ROOT$UNIT_FILE"
record f "$UNIT_FILE"
mv "$ROOT$MANIFEST.tmp" "$ROOT$MANIFEST"

say "installed the Tidemark agent${ROOT:+ into $ROOT}:"
say "  $LIB_DIR/$BUNDLE_NAME  (node $NODE_VERSION at $NODE)"
say "  $CONF_FILE"
say "  $UNIT_FILE"
say "  $STATE_DIR  (enrollment and replication state)"
if systemd_running; then
  systemctl daemon-reload
  systemctl enable --now "$UNIT_NAME"
  say "started $UNIT_NAME (logs: journalctl -u $UNIT_NAME -f)"
else
  say "systemd is not running${ROOT:+ for $ROOT}: nothing was started."
  say "  start it where systemd runs: systemctl daemon-reload && systemctl enable --now $UNIT_NAME"
fi
say "next: enable protection of machine $MACHINE on the console (or PUT .../machines/{id}/protection);"
say "      the agent waits for it, then replicates. Uninstall: sh $LIB_DIR/install.sh --uninstall"
