//! `TcpConfig`: the limits and timers of one core's TCP stack.

/// Settings of a core's TCP stack; [`Default`] gives values a Linux user
/// would recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// Connections one core holds at once (half-open ones included).
    pub max_connections: usize,
    /// Half-open connections (SYN received, not yet acknowledged) kept per
    /// core before answering SYNs with cookies instead.
    pub syn_backlog: usize,
    /// Bytes a connection buffers on receive (the window it offers).
    pub receive_buffer: usize,
    /// Bytes a connection buffers on send (kept until acknowledged).
    pub send_buffer: usize,
    /// How long a closed connection stays in TIME-WAIT (2 MSL).
    pub time_wait_ms: u64,
    /// TIME-WAIT entries kept; beyond, the oldest is recycled (counted).
    pub max_time_wait: usize,
    /// Lower bound of the retransmission timeout (RFC 6298 says 1 s;
    /// Linux, like us, 200 ms).
    pub rto_min_ms: u64,
    /// Upper bound of the retransmission timeout.
    pub rto_max_ms: u64,
    /// Timeout before the first RTT sample (RFC 6298: 1 s).
    pub rto_initial_ms: u64,
    /// Retransmissions of one segment before the connection is dropped.
    pub max_retransmissions: u32,
    /// Retransmissions of a SYN-ACK before a half-open connection is dropped.
    pub syn_ack_retries: u32,
    /// How long a connection waits in FIN-WAIT-2 for the peer's FIN after
    /// the app closed.
    pub fin_wait2_ms: u64,
    /// Idle time before keep-alive probes, 0 for none.
    pub keepalive_ms: u64,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_connections: 16_384,
            syn_backlog: 1024,
            receive_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            time_wait_ms: 60_000,
            max_time_wait: 65_536,
            rto_min_ms: 200,
            rto_max_ms: 60_000,
            rto_initial_ms: 1000,
            max_retransmissions: 12,
            syn_ack_retries: 5,
            fin_wait2_ms: 60_000,
            keepalive_ms: 0,
        }
    }
}

impl TcpConfig {
    /// The window scale that lets the receive buffer be offered whole.
    pub fn window_scale(&self) -> u8 {
        let mut scale = 0;
        while (self.receive_buffer >> scale) > usize::from(u16::MAX) && scale < 14 {
            scale += 1;
        }
        scale
    }
}
