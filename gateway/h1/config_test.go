package h1

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := []struct {
		field  string
		mutate func(*Config)
	}{
		{"MaxIdleConnsPerHost", func(c *Config) { c.MaxIdleConnsPerHost = -1 }},
		{"IdleConnTimeout", func(c *Config) { c.IdleConnTimeout = 0 }},
		{"DialTimeout", func(c *Config) { c.DialTimeout = -1 }},
		{"MaxResponseHeaderBytes", func(c *Config) { c.MaxResponseHeaderBytes = 0 }},
		{"MaxResponseHeaderBytes", func(c *Config) { c.MaxResponseHeaderBytes = MaxHeaderLimit + 1 }},
		{"WriteBufferSize", func(c *Config) { c.WriteBufferSize = 10 }},
		{"ReadBufferSize", func(c *Config) { c.ReadBufferSize = 0 }},
		{"Dial", func(c *Config) { c.Dial = nil }},
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		tc.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming the field", tc.field, err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted a bad config", tc.field)
		}
	}
}

type closeRecorder struct {
	strings.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestUnsupportedSchemeAndInvalid(t *testing.T) {
	tr := newTransport(t, nil)
	for _, tc := range []struct {
		url    string
		header map[string]string
		want   error
	}{
		{"https://example.com/", nil, ErrUnsupportedScheme},
		{"ftp://example.com/", nil, ErrUnsupportedScheme},
		{"http:///nohost", nil, ErrInvalidRequest},
		{"http://example.com/", map[string]string{"X-Bad": "a\r\nInjected: 1"}, ErrInvalidRequest},
		{"http://example.com/", map[string]string{"Bad Name": "v"}, ErrInvalidRequest},
	} {
		body := &closeRecorder{Reader: *strings.NewReader("x")}
		req, err := http.NewRequest("POST", tc.url, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.header {
			req.Header[k] = []string{v}
		}
		_, err = tr.RoundTrip(req)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s %v: got %v, want %v", tc.url, tc.header, err, tc.want)
		}
		if !body.closed {
			t.Errorf("%s: request body not closed", tc.url)
		}
	}
}
