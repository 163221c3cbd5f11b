# Shell helpers shared by bench/run and bench/ab (sourced, not run).

# Listening ports come from below the kernel's ephemeral range, so that no client
# socket of the load (nor one in TIME_WAIT) can hold the port picked.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT_LOW=20000
((EPHEMERAL_LOW - PORT_LOW >= 2000)) || PORT_LOW=$((EPHEMERAL_LOW - 2000))
# Ports handed out already: a server may not have bound its port yet when the
# next one is picked.
USED_PORTS=" "

# free_port: prints a port that nothing listens on and that was not handed out
# before. It runs in a subshell when called as $(free_port), so it cannot record
# the port itself: use take_port.
free_port() {
    local p
    while :; do
        p=$((PORT_LOW + RANDOM % (EPHEMERAL_LOW - PORT_LOW)))
        [[ "$USED_PORTS" == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# take_port: sets PORT to a free port and records it as handed out.
take_port() {
    PORT=$(free_port)
    USED_PORTS+="$PORT "
}
