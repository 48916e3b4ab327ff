#!/usr/bin/env python3
"""One-time capture of what the Linux kernel hands up a TUN device opened with IFF_VNET_HDR
and TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): the 10-octet virtio-net header and
the packet behind it, for src/adapter/vnet.rs's tests (tests/golden/vnet_kernel.txt).

Run as root: `python3 tests/golden/vnet_capture.py > tests/golden/vnet_kernel.txt`.
It makes a namespace `vnetcap` with a TUN device `vc0` (10.0.0.1/24, fd00::1/64), plays a
minimal TCP peer at 10.0.0.2 / fd00::2 on the device, lets the kernel connect and write 64 KiB
on each family, and prints every packet read (SYN, then the data the kernel sends in its first
flight, which with TSO on is one GSO super-packet), then removes the namespace.
"""
import fcntl, os, socket, struct, subprocess, sys, threading, time, select

NS, DEV = "vnetcap", "vc0"
TUNSETIFF, TUNSETOFFLOAD = 0x400454CA, 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04

def sh(*args):
    subprocess.run(args, check=True)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def tcp_reply(v6, src, dst, sport, dport, seq, ack, flags, options=b""):
    off = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + options
    if v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
    else:
        pseudo = src + dst + struct.pack("!xBH", 6, len(tcp))
    c = csum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src + dst
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0) + src + dst
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    # A virtio-net header of zeros: checksum complete, no GSO.
    return bytes(10) + ip + tcp

def main():
    if sys.argv[1:] == ["inside"]:
        return run()
    sh("ip", "netns", "add", NS)
    try:
        sys.stdout.flush()
        sh("ip", "netns", "exec", NS, sys.executable, os.path.abspath(__file__), "inside")
    finally:
        subprocess.run(["ip", "netns", "del", NS])

def run():
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "tuntap", "add", "dev", DEV, "mode", "tun")
    sh("ip", "addr", "add", "10.0.0.1/24", "dev", DEV)
    sh("ip", "-6", "addr", "add", "fd00::1/64", "dev", DEV, "nodad")
    sh("ip", "link", "set", DEV, "up")
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH22x", DEV.encode(), IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
    fcntl.ioctl(tun, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
    print("# Captured by tests/golden/vnet_capture.py (Linux %s): reads from a TUN device with" % os.uname().release)
    print("# IFF_VNET_HDR and TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6; each line: a label, then the read's")
    print("# octets in hex (the 10-octet virtio-net header, then the IP packet).")
    for v6, fam, ours, theirs in [(False, socket.AF_INET, "10.0.0.1", "10.0.0.2"),
                                  (True, socket.AF_INET6, "fd00::1", "fd00::2")]:
        family = "tcpv6" if v6 else "tcpv4"
        src = socket.inet_pton(fam, theirs)
        dst = socket.inet_pton(fam, ours)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((theirs, 5000))
        except BlockingIOError:
            pass
        got_data = False
        deadline = time.time() + 5
        while time.time() < deadline and not got_data:
            r, _, _ = select.select([tun], [], [], 0.2)
            if not r:
                continue
            pkt = os.read(tun, 70000)
            ip = pkt[10:]
            if v6 != (ip[0] >> 4 == 6):
                continue
            ihl = 40 if v6 else (ip[0] & 15) * 4
            if ip[6 if v6 else 9] != 6:
                continue
            tcp = ip[ihl:]
            sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", tcp[:14])
            payload = len(tcp) - (off >> 4) * 4
            if flags & 0x02:
                print("%s_syn %s" % (family, pkt.hex()))
                # SYN-ACK: MSS 1460 (1440 for IPv6), window scale 7; no SACK, no timestamps.
                mss = 1440 if v6 else 1460
                opts = struct.pack("!BBH", 2, 4, mss) + bytes([1, 3, 3, 7])
                os.write(tun, tcp_reply(v6, src, dst, dport, sport, 1000, seq + 1, 0x12, opts))
                # The kernel's first flight: 64 KiB written at once.
                while True:
                    try:
                        s.setblocking(True)
                        break
                    except OSError:
                        time.sleep(0.01)
                threading.Thread(target=lambda: s.sendall(bytes(range(256)) * 256), daemon=True).start()
            elif payload > 0:
                print("%s_data %s" % (family, pkt.hex()))
                got_data = True
        s.close()
        time.sleep(0.1)

main()
