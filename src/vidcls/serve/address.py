"""The server's address as people and events show it."""

from __future__ import annotations

import ipaddress
import socket


def shown_host(host: str) -> str:
    """``host`` as an address in a URL: this machine's LAN address for every interface."""
    shown = lan_address() if host in ("0.0.0.0", "::") else host
    return f"[{shown}]" if ":" in shown else shown


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str:
    """This machine's address on its default route (no packet is sent), for the banner."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
            return s.getsockname()[0]
        except OSError:
            return "0.0.0.0"
