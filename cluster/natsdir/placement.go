package natsdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// PlacementKey is the directory key of the placement parameters.
const PlacementKey = "meta.placement"

// PlacementRecord holds the parameters every node must agree on to compute
// the same desired map.
type PlacementRecord struct {
	Partitions int     `json:"partitions"`
	Hasher     string  `json:"hasher"`
	Library    string  `json:"library"`
	LoadFactor float64 `json:"load_factor"`
	// ReplicationFactor is the virtual nodes per member (it changes the
	// map too).
	ReplicationFactor int `json:"replication_factor"`
}

// PlacementMismatchError tells that the directory records other placement
// parameters than this node's: the node must refuse to join.
type PlacementMismatchError struct {
	// Fields names each differing field: "partitions", "hasher",
	// "library", "load factor", "replication factor".
	Fields []string
	Stored PlacementRecord // in the directory
	Local  PlacementRecord // this node's
}

func (e *PlacementMismatchError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		var s, l any
		switch f {
		case "partitions":
			s, l = e.Stored.Partitions, e.Local.Partitions
		case "hasher":
			s, l = e.Stored.Hasher, e.Local.Hasher
		case "library":
			s, l = e.Stored.Library, e.Local.Library
		case "load factor":
			s, l = e.Stored.LoadFactor, e.Local.LoadFactor
		case "replication factor":
			s, l = e.Stored.ReplicationFactor, e.Local.ReplicationFactor
		}
		parts = append(parts, fmt.Sprintf("%s: directory has %v, this node %v", f, s, l))
	}
	return "natsdir: placement parameters differ from the directory's (" + strings.Join(parts, "; ") + ")"
}

func (r PlacementRecord) diff(o PlacementRecord) []string {
	var f []string
	if r.Partitions != o.Partitions {
		f = append(f, "partitions")
	}
	if r.Hasher != o.Hasher {
		f = append(f, "hasher")
	}
	if r.Library != o.Library {
		f = append(f, "library")
	}
	if r.LoadFactor != o.LoadFactor {
		f = append(f, "load factor")
	}
	if r.ReplicationFactor != o.ReplicationFactor {
		f = append(f, "replication factor")
	}
	return f
}

// CheckPlacement records rec under PlacementKey if absent; if present and
// different, it returns a *PlacementMismatchError. Other errors (JetStream
// unavailable) are returned wrapped after retrying until ctx ends.
// Safe for concurrent use.
func (d *Directory) CheckPlacement(ctx context.Context, rec PlacementRecord) error {
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("natsdir: placement record: %w", err)
	}
	var mismatch *PlacementMismatchError
	err = retry(ctx, d.log, "check placement", func(ctx context.Context) error {
		e, err := d.kv.Get(ctx, PlacementKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = d.kv.Create(ctx, PlacementKey, val)
			if IsWrongLastSeq(err) {
				return errRetryNow // created by another node meanwhile: compare
			}
			return err // an unknown outcome is retried: the next read tells
		}
		if err != nil {
			return err
		}
		var stored PlacementRecord
		if err := json.Unmarshal(e.Value(), &stored); err != nil {
			return permanent(fmt.Errorf("undecodable %s: %w", PlacementKey, err))
		}
		if f := stored.diff(rec); len(f) > 0 {
			mismatch = &PlacementMismatchError{Fields: f, Stored: stored, Local: rec}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("natsdir: check placement: %w", err)
	}
	if mismatch != nil {
		return mismatch
	}
	return nil
}
