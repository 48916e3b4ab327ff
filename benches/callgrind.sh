#!/usr/bin/env bash
# Instruction counts under callgrind (deterministic, unlike time): per data segment for
# bulk_mtu1500 (copying APIs), bulk_mtu1500_bytes (each stack's best API) and
# bulk_mtu1500_superseg (tcp-proto's super-segments cut into wire packets in software, verified
# and coalesced again by the harness's GRO on the receiving side, per wire packet; smoltcp
# as in the _bytes row, whose count it reuses: the same function and workload) and per
# lifecycle for churn, for tcp-proto and smoltcp, each stack in its own
# valgrind run with collection switched on only inside that stack's transfer function.
# Prints `RESULT <workload> <metric> tcp-proto=… smoltcp=… ratio=…` lines.
#
#   benches/callgrind.sh            # 64 MiB bulk, 2 000 lifecycles
#   SCALE_BULK=0.25 SCALE_CHURN=0.5 benches/callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
scale_bulk=${SCALE_BULK:-0.0625}
scale_churn=${SCALE_CHURN:-0.1}
cargo bench --no-run --bench bulk --bench churn >/dev/null 2>&1
target_dir=${CARGO_TARGET_DIR:-target}
binary() { ls -t "$target_dir"/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
out=$(mktemp -d)

# glibc copies large blocks (the applications' 64 KiB writes and reads) with `rep movsb`,
# which valgrind counts as one instruction per octet moved: 2 920 of the 7 100 "instructions"
# per segment would be an artefact of the counter, the same for both stacks. Raising the
# threshold makes memcpy use its vector loop at every size, so the counts are of work done.
# The same for memset's `rep stosb` (smoltcp's closure send produces its data with `fill`).
export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295:glibc.cpu.x86_rep_stosb_threshold=4294967295

# instructions <binary> <function> <stack> <args...>: Ir collected inside <function>.
instructions() {
    local bin=$1 function=$2 stack=$3
    shift 3
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
        --toggle-collect="$function" "$bin" --only "$stack" --rounds 1 "$@" \
        >"$out/stdout" 2>"$out/stderr"
    grep -m1 '^summary:' "$out/cg.out" | awk '{print $2}'
}

bulk=$(binary bulk)
churn=$(binary churn)
declare -A per
for stack in tcp-proto smoltcp; do
    fn=${stack//-/_}
    ir=$(instructions "$bulk" "bulk::${fn}_bulk" "$stack" --workload bulk_mtu1500 --scale "$scale_bulk")
    segments=$(grep -o '[0-9]* data segments' "$out/stderr" | head -1 | awk '{print $1}')
    per[bulk_$stack]=$(awk -v i="$ir" -v s="$segments" 'BEGIN {printf "%.1f", i / s}')
    echo "bulk_mtu1500 $stack: $ir instructions, $segments data segments" >&2
    # Each stack through its best API (tcp-proto's Bytes forms; smoltcp's closures).
    best=$([ "$stack" = tcp-proto ] && echo bulk::tcp_proto_bulk_bytes || echo bulk::smoltcp_bulk_best)
    ir=$(instructions "$bulk" "$best" "$stack" --workload bulk_mtu1500_bytes --scale "$scale_bulk")
    segments=$(grep -o '[0-9]* data segments' "$out/stderr" | head -1 | awk '{print $1}')
    per[bytes_$stack]=$(awk -v i="$ir" -v s="$segments" 'BEGIN {printf "%.1f", i / s}')
    echo "bulk_mtu1500_bytes $stack: $ir instructions, $segments data segments" >&2
    if [ "$stack" = tcp-proto ]; then
        ir=$(instructions "$bulk" bulk::tcp_proto_bulk_superseg "$stack" --workload bulk_mtu1500_superseg --scale "$scale_bulk")
        segments=$(grep -o '[0-9]* data segments' "$out/stderr" | head -1 | awk '{print $1}')
        per[superseg_$stack]=$(awk -v i="$ir" -v s="$segments" 'BEGIN {printf "%.1f", i / s}')
        echo "bulk_mtu1500_superseg $stack: $ir instructions, $segments data segments" >&2
    else
        per[superseg_$stack]=${per[bytes_$stack]}
    fi
    ir=$(instructions "$churn" "churn::${fn}_churn" "$stack" --workload churn --scale "$scale_churn")
    lifecycles=$(grep -o '[0-9]* lifecycles' "$out/stderr" | head -1 | awk '{print $1}')
    per[churn_$stack]=$(awk -v i="$ir" -v s="$lifecycles" 'BEGIN {printf "%.1f", i / s}')
    echo "churn $stack: $ir instructions, $lifecycles lifecycles" >&2
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo "RESULT bulk_mtu1500 instructions_per_segment tcp-proto=${per[bulk_tcp-proto]} smoltcp=${per[bulk_smoltcp]} ratio=$(ratio "${per[bulk_tcp-proto]}" "${per[bulk_smoltcp]}")"
echo "RESULT bulk_mtu1500_bytes instructions_per_segment tcp-proto=${per[bytes_tcp-proto]} smoltcp=${per[bytes_smoltcp]} ratio=$(ratio "${per[bytes_tcp-proto]}" "${per[bytes_smoltcp]}")"
echo "RESULT bulk_mtu1500_superseg instructions_per_segment tcp-proto=${per[superseg_tcp-proto]} smoltcp=${per[superseg_smoltcp]} ratio=$(ratio "${per[superseg_tcp-proto]}" "${per[superseg_smoltcp]}")"
echo "RESULT churn instructions_per_lifecycle tcp-proto=${per[churn_tcp-proto]} smoltcp=${per[churn_smoltcp]} ratio=$(ratio "${per[churn_tcp-proto]}" "${per[churn_smoltcp]}")"
rm -rf "$out"
