"""A dev gateway on loopback answers for its own host names only (gateway/local_hosts.py):
the real gateway in front of the real jobs service."""

from __future__ import annotations

import httpx

from bytereview.core import DEV_TOKEN

AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


async def test_a_foreign_host_gets_no_dev_token(port: int) -> None:
    """DNS rebinding: a web page the developer opens names its own host, which its DNS then
    points at 127.0.0.1. The browser sends that page's `Host`; a loopback dev gateway that
    answers it hands the page the dev token (an admin's) and every API call with it."""
    rebound = {"Host": f"attacker.example:{port}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        config = await client.get("/app-config.json", headers=rebound)
        assert "devToken" not in config.text, config.text
        jobs = await client.get("/v1/jobs", headers={**rebound, **AUTH})
        assert jobs.status_code == 403, jobs.text


async def test_the_dev_gateways_own_names_still_work(port: int) -> None:
    """Loopback names and the public URL's host are answered; a name that only starts like
    a loopback address is not one."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "gateway.test", f"[::1]:{port}"):
            config = await client.get("/app-config.json", headers={"Host": host})
            assert "devToken" in config.text, (host, config.text)
        refused = await client.get("/v1/jobs", headers={"Host": "127.0.0.1.evil.example", **AUTH})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["message"]
