# shellcheck shell=sh
# What the measurement scripts of docker/ share (compare-redis,
# compare-memory, measure-fill): sourced from the repository's root once
# the script has made $work, its temporary directory. Its functions call
# fail, which the script defines: it reports, keeps the logs in $work and
# exits.

# need_redis installs Debian's redis-server where it is missing, as root.
need_redis() {
	command -v redis-server >/dev/null && return
	if [ "$(id -u)" != 0 ]; then
		echo "redis-server is missing: apt-get install redis-server" >&2
		exit 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
}

# herd_binary sets $herd: HERD_BIN, or this tree's herd built into $work.
herd_binary() {
	if [ -n "${HERD_BIN:-}" ]; then
		herd=$HERD_BIN
	else
		CGO_ENABLED=0 go build -trimpath -o "$work/herd" ./services/herd
		herd=$work/herd
	fi
}

# until_ok what command...: waits until command succeeds, at most
# UNTIL_SECONDS (300), and fails saying what was awaited.
until_ok() {
	what=$1
	shift
	deadline=$(($(date +%s) + ${UNTIL_SECONDS:-300}))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -le "$deadline" ] || fail "$what: not in ${UNTIL_SECONDS:-300} s"
		sleep 0.1
	done
}

# The classic herd: server i's name, and "i:neighbours" for each.
classic_names="Hill Jaquez Smith Campbell Singleton"
classic_topology="0:1,2 1:0,4 2:0,3,4 3:2,4 4:1,2,3"
name_of() { echo "$classic_names" | cut -d' ' -f$(($1 + 1)); }

# classic_peers i port: HERD_PEERS for classic server i, whose neighbour j
# listens for peers on port+j.
classic_peers() {
	peers=""
	for j in $(echo "$classic_topology" | tr ' ' '\n' | sed -n "s/^$1://p" | tr , ' '); do
		peers="$peers${peers:+,}$(name_of "$j")=127.0.0.1:$(($2 + j))"
	done
	echo "$peers"
}

# start_classic i base: starts classic server i as `herd serve` with its
# journal in $work/<name> and its log appended to $work/<name>.log,
# listening on 127.0.0.1 for clients on base+i, for peers on base+100+i
# and for metrics on base+200+i, with the peer secret $secret and
# GOMAXPROCS=1 as compose.yaml runs it (export GOMAXPROCS to change it);
# sets $pid.
start_classic() {
	name=$(name_of "$1")
	mkdir -p "$work/$name"
	GOMAXPROCS=${GOMAXPROCS-1} HERD_NAME=$name HERD_PEERS=$(classic_peers "$1" $(($2 + 100))) \
		HERD_PEER_SECRET=$secret HERD_DATA_DIR=$work/$name HERD_PLACES=offline \
		HERD_CLIENT_ADDR=127.0.0.1:$(($2 + $1)) HERD_PEER_ADDR=127.0.0.1:$(($2 + 100 + $1)) \
		HERD_METRICS_ADDR=127.0.0.1:$(($2 + 200 + $1)) "$herd" serve 2>>"$work/$name.log" &
	pid=$!
}
