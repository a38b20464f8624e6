package usage

import "github.com/holdfast/holdfast/gateway/jsonscan"

// geminiFields is a geminiResponse as decoded by the walker.
type geminiFields struct {
	candidates       finishes
	usagePresent     bool
	usage            geminiUsage
	modelVersion, id str
	errPresent       bool // Error non-nil
	errStatus        str
}

func (r *geminiFields) decode(data []byte) bool {
	r.candidates = finishes{key: "finishReason"}
	var d decoder
	m := &r.usage
	return d.decodeDoc(data, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			switch {
			case k.Fold("candidates"):
				return r.candidates.decode(&d, b, v, depth)
			case k.Fold("usageMetadata"):
				return d.ptrObject(b, v, depth, &r.usagePresent, func() { *m = geminiUsage{} },
					func(k jsonscan.Key, v, depth int) (int, error) {
						switch {
						case k.Fold("promptTokenCount"):
							return d.int64(b, v, depth, &m.PromptTokenCount)
						case k.Fold("cachedContentTokenCount"):
							return d.int64(b, v, depth, &m.CachedContentTokenCount)
						case k.Fold("candidatesTokenCount"):
							return d.int64(b, v, depth, &m.CandidatesTokenCount)
						case k.Fold("thoughtsTokenCount"):
							return d.int64(b, v, depth, &m.ThoughtsTokenCount)
						case k.Fold("toolUsePromptTokenCount"):
							return d.int64(b, v, depth, &m.ToolUsePromptTokenCount)
						}
						return -1, nil
					})
			case k.Fold("modelVersion"):
				return d.string(b, v, depth, &r.modelVersion, false)
			case k.Fold("responseId"):
				return d.string(b, v, depth, &r.id, false)
			case k.Fold("error"):
				return d.ptrObject(b, v, depth, &r.errPresent, func() { r.errStatus = str{} },
					func(k jsonscan.Key, v, depth int) (int, error) {
						if k.Fold("status") {
							return d.string(b, v, depth, &r.errStatus, false)
						}
						return -1, nil
					})
			}
			return -1, nil
		})
	})
}

// addFields is add for a decoded event.
func (g *Gemini) addFields(r *geminiFields) EventInfo {
	if r.errPresent {
		g.u.ErrorType = orDefault(decodeString(r.errStatus.raw, g.u.ErrorType), "error")
		return EventInfo{Terminal: true}
	}
	if len(r.modelVersion.raw) > 0 {
		g.u.Model = decodeString(r.modelVersion.raw, g.u.Model)
	}
	if len(r.id.raw) > 0 {
		g.u.ID = decodeString(r.id.raw, g.u.ID)
	}
	if f := r.candidates.lastReason(); len(f.raw) > 0 {
		g.u.StopReason = decodeString(f.raw, g.u.StopReason)
		g.sawFinish = true
	}
	if r.usagePresent {
		g.setUsage(&r.usage)
	}
	g.u.Complete = g.sawUsage && g.sawFinish
	return EventInfo{}
}
