package jaeger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrNotFound is Trace's error for a trace Jaeger does not have.
var ErrNotFound = errors.New("jaeger: trace not found")

// Trace is a trace as Jaeger's query API returns it (/api/traces/<id>).
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
}

// Span is a span of a Trace. IDs are lower-case hex; times are in
// microseconds.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"`
	Duration      int64       `json:"duration"`
	Tags          []KeyValue  `json:"tags"`
	ProcessID     string      `json:"processID"`
}

// Reference links a span to another: CHILD_OF for its parent, FOLLOWS_FROM
// for an OpenTelemetry span link.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// KeyValue is a span tag or a process tag.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Process is the resource of a span: its service and resource attributes.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Parent returns the ID of the span's parent in its trace, "" for a root.
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns the value of the span tag key, as a string, and whether the
// span has it.
func (s Span) Tag(key string) (string, bool) {
	return tag(s.Tags, key)
}

// Tag returns the value of the process tag key (a resource attribute) as a
// string, and whether the process has it.
func (p Process) Tag(key string) (string, bool) {
	return tag(p.Tags, key)
}

func tag(kvs []KeyValue, key string) (string, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return fmt.Sprint(kv.Value), true
		}
	}
	return "", false
}

// Trace fetches the trace with the given ID (32 hex digits) from the query
// API: ErrNotFound if Jaeger does not have it.
func (j *Jaeger) Trace(traceID string) (*Trace, error) {
	var traces []Trace
	if err := j.get("/api/traces/"+url.PathEscape(traceID), nil, &traces); err != nil {
		return nil, err
	}
	if len(traces) != 1 {
		return nil, fmt.Errorf("jaeger: /api/traces/%s: %d traces, want 1", traceID, len(traces))
	}
	return &traces[0], nil
}

// WaitTrace polls Trace until the trace is there and check (if not nil)
// accepts it, and returns it; it fails the test after timeout with check's
// last complaint. Jaeger stores spans as they come, so a trace can be found
// before all its spans are: check says when it is complete enough.
func (j *Jaeger) WaitTrace(traceID string, timeout time.Duration, check func(*Trace) error) *Trace {
	j.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tr, err := j.Trace(traceID)
		if err == nil && check != nil {
			err = check(tr)
		}
		if err == nil {
			return tr
		}
		if time.Now().After(deadline) {
			j.t.Fatalf("jaeger: trace %s after %v: %v", traceID, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Search returns the traces of service that have a span named operation
// ("" for any) and started in the last hour, at most limit of them.
func (j *Jaeger) Search(service, operation string, limit int) ([]Trace, error) {
	q := url.Values{"service": {service}, "lookback": {"1h"}, "limit": {strconv.Itoa(limit)}}
	if operation != "" {
		q.Set("operation", operation)
	}
	var traces []Trace
	err := j.get("/api/traces", q, &traces)
	return traces, err
}

// get GETs a query API path and decodes its envelope's data into v; a 404
// is ErrNotFound.
func (j *Jaeger) get(path string, q url.Values, v any) error {
	u := "http://" + j.QueryHTTP + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := client.Get(u)
	if err != nil {
		return fmt.Errorf("jaeger: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("jaeger: %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("jaeger: %s: %s: %w\n%s", path, resp.Status, err, body)
	}
	if resp.StatusCode != http.StatusOK || len(env.Errors) > 0 {
		return fmt.Errorf("jaeger: %s: %s: %+v", path, resp.Status, env.Errors)
	}
	return json.Unmarshal(env.Data, v)
}
