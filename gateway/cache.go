package gateway

import (
	"bytes"
	"hash/maphash"
	"time"

	"github.com/holdfast/holdfast/gateway/usage"
)

// cache_silent_miss: a prompt prefix that was read from the provider's
// cache before is now billed in full. The prefix is the body up to its
// last "cache_control" marker (everything a cache breakpoint covers),
// hashed with the provider and model; the gateway remembers, in a bounded
// LRU, when each prefix last had cache reads. A full-price call within
// cacheMissWindow of a read is the failure (after that the cache may
// simply have expired: 5 minutes is Anthropic's default TTL).

const cacheMissWindow = 5 * time.Minute

var prefixSeed = maphash.MakeSeed()

var cacheControlMarker = []byte(`"cache_control"`)

func promptPrefixHash(provider, model string, raw []byte) (uint64, bool) {
	i := bytes.LastIndex(raw, cacheControlMarker)
	if i < 0 {
		return 0, false
	}
	var h maphash.Hash
	h.SetSeed(prefixSeed)
	h.WriteString(provider)
	h.WriteByte(0)
	h.WriteString(model)
	h.WriteByte(0)
	h.Write(raw[:i])
	return h.Sum64(), true
}

// checkCache records cache reads for a prefix and reports a silent miss.
func (g *Gateway) checkCache(hash uint64, u usage.Usage) bool {
	now := g.clk.Now()
	if u.CacheReadInputTokens > 0 {
		g.cacheSeen.put(hash, now)
		return false
	}
	last, ok := g.cacheSeen.get(hash)
	return ok && u.TotalInputTokens() > 0 && now.Sub(last) < cacheMissWindow
}
