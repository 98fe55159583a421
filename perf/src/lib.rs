//! warpcore's benchmark harness. Today it holds the peer programs the
//! harness runs on Linux: `udp-echo-server`, the recvmmsg/sendmmsg echo that
//! serves both as the Linux host kernel's peer and, statically linked, inside
//! the Linux guest.
