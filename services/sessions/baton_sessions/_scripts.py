"""Lua scripts of the hot tier. Each touches keys of one session's hash tag only.

They are called by SHA; after a Redis restart the first call gets NOSCRIPT
and the cache loads them again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: it goes out with every call of the script.
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


# Writes a session record unless Redis already holds a newer version (a
# slower writer must not undo a faster one), keeps the fresher of the two
# last-activity times, adds executions to the bounded history and wakes the
# session's watchers.
# KEYS: session hash, history zset.
# ARGV: version, ttl ms, last activity us, history limit, channel to publish
#       the version on ('' for none), n, n x (score, member), then the
#       record's field/value pairs (none: history only).
PUT = Script("put", """
local n = tonumber(ARGV[6])
local fields = 7 + 2 * n
if n > 0 then
  for i = 7, fields - 1, 2 do
    redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[i], ARGV[i])
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], ARGV[1])
end
if #ARGV < fields then
  return 0
end
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) > tonumber(ARGV[1]) then
  return 0
end
local activity = redis.call('HGET', KEYS[1], 'la')
if not activity or tonumber(activity) < tonumber(ARGV[3]) then
  activity = ARGV[3]
end
redis.call('HSET', KEYS[1], 'la', activity, unpack(ARGV, fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
""")

# Reads a session record; an active one counts as used: its last-activity
# time and the TTL of its keys are refreshed, unless the reader must be its
# user and is not (a read that is refused is no activity). Returns [record,
# last activity]. KEYS: session hash, history zset. ARGV: now us, ttl ms, the
# user the reader must be ('' for anyone).
TOUCH = Script("touch", """
if redis.call('HGET', KEYS[1], 's') == 'ACTIVE' then
  local user = redis.call('HGET', KEYS[1], 'u')
  if ARGV[3] == '' or not user or user == ARGV[3] then
    redis.call('HSET', KEYS[1], 'la', ARGV[1])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
end
return redis.call('HMGET', KEYS[1], 'r', 'la')
""")

# The execution count next to the newest history entries, so the caller can
# tell whether the history is complete. KEYS: session hash, history zset.
# ARGV: how many entries.
HISTORY = Script("history", """
local count = redis.call('HGET', KEYS[1], 'n')
if not count then
  return false
end
return {count, redis.call('ZCARD', KEYS[2]),
        redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')}
""")

# Deletes an index entry only if it still names this session.
# KEYS: index key. ARGV: session id.
UNINDEX = Script("unindex", """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""")

ALL = (PUT, TOUCH, HISTORY, UNINDEX)
