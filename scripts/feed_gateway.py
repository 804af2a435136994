"""Feed an archive of sync calls (chiso766 simulate --format dvcqg) to a gateway, as a province's
one-stop system would: a session, then each call, sent again while the gateway answers 503."""

from __future__ import annotations

import gzip
import sys
import time

import httpx
import orjson


def main(url: str, archive: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health").json().get("status") == "ok":
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    session = httpx.post(f"{url}/auth", json={"username": "demo-one-stop", "password": "demo-password"},
                         headers={"dstcode": "H16"}).json()["session"]
    opener = gzip.open if archive.endswith(".gz") else open
    sent = refused = 0
    with opener(archive, "rb") as lines, httpx.Client(timeout=60) as client:
        for line in lines:
            body = orjson.loads(line)
            if "event_type" in body:
                continue  # the unit registry: the gateway published it at start
            body["session"] = session
            while (answer := client.post(f"{url}/integration", json=body)).status_code == 503:
                time.sleep(1)
            sent += len(body["data"])
            refused += len(answer.json().get("rejected", []))
    print(f"{sent:,} records sent, {refused:,} refused")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
