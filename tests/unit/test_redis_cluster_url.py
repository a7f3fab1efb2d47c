"""redis+cluster:// URLs and clients: what is refused, with what advice (no server needed)."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from scoter.config import redact, storage_from_url
from scoter.exceptions import ConfigurationError
from scoter.storage.redis import RedisStorage
from scoter.storage.redis_cluster import RedisClusterStorage


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host:7000/1",
        "redis+cluster://host:notaport",
        "redis+cluster://host:7000?prefix={app}",
        "redis+cluster://host:7000?prefix=",
    ],
)
def test_a_bad_cluster_url_is_refused_with_what_to_write(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"prefix|redis\+cluster://host:port|port"):
        storage_from_url(url)


def test_no_seed_answering_is_an_outage_not_a_configuration_error() -> None:
    with pytest.raises(redis.ConnectionError, match="no node of the Redis Cluster"):
        storage_from_url("redis+cluster://:secret@127.0.0.1:1,127.0.0.1:2?prefix=x")


def test_a_cluster_url_shows_no_password() -> None:
    assert redact("rediss+cluster://u:se/cr?et@a:7000,b:7001/0?prefix=x") == (
        "rediss+cluster://u:***@a:7000,b:7001/0?prefix=x"
    )


def test_a_cluster_client_given_to_the_one_server_storage_says_what_to_use() -> None:
    client = RedisCluster.__new__(RedisCluster)  # its type is all that is looked at
    with pytest.raises(ConfigurationError, match="RedisClusterStorage"):
        RedisStorage(client)  # type: ignore[arg-type]


def test_a_prefix_with_a_hash_tag_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="braces"):
        RedisClusterStorage(RedisCluster.__new__(RedisCluster), prefix="{app}")
