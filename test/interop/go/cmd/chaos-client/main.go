// chaos-client lets real Go valkeyaside clients take part in the chaos run's histories (test/chaos/go-client.ts):
// JSON-line commands on stdin, one goroutine each, answers (and "the loader computed this" events) on stdout.
// It holds several clients and a command names the one to use, so the caller can keep one op per client at a time.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeyaside"
)

type command struct {
	ID        int    `json:"id"`
	Op        string `json:"op"`
	Client    int    `json:"client"`
	Key       string `json:"key"`
	TTLMs     int    `json:"ttlMs"`
	TimeoutMs int    `json:"timeoutMs"`
	Value     string `json:"value"`
	DelayMs   int    `json:"delayMs"`
	Fail      bool   `json:"fail"`
}

type answer struct {
	ID     int     `json:"id"`
	Ok     bool    `json:"ok"`
	Load   bool    `json:"load,omitempty"`
	Loaded bool    `json:"loaded,omitempty"`
	Value  *string `json:"value,omitempty"`
	Error  string  `json:"error,omitempty"`
}

var (
	outMu sync.Mutex
	out   = json.NewEncoder(os.Stdout)
)

func reply(a answer) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(a)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: chaos-client <addr> <clients> <clientTtlMs>")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[2])
	ttlMs, _ := strconv.Atoi(os.Args[3])
	clients := make([]valkeyaside.CacheAsideClient, n)
	for i := range clients {
		c, err := valkeyaside.NewClient(valkeyaside.ClientOption{
			ClientOption: valkey.ClientOption{InitAddress: []string{os.Args[1]}},
			ClientTTL:    time.Duration(ttlMs) * time.Millisecond,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos-client:", err)
			os.Exit(1)
		}
		clients[i] = c
	}
	fmt.Println(`{"id":0,"ok":true}`) // ready
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64*1024), 1024*1024)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil || cmd.Client < 0 || cmd.Client >= n {
			reply(answer{ID: cmd.ID, Error: fmt.Sprintf("bad command %q", in.Text())})
			continue
		}
		go run(clients[cmd.Client], cmd)
	}
	// stdin closed: the test is done (or died); leave without waiting for pending gets.
	os.Exit(0)
}

func run(c valkeyaside.CacheAsideClient, cmd command) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cmd.TimeoutMs)*time.Millisecond)
	defer cancel()
	switch cmd.Op {
	case "del":
		if err := c.Del(ctx, cmd.Key); err != nil {
			reply(answer{ID: cmd.ID, Error: err.Error()})
			return
		}
		reply(answer{ID: cmd.ID, Ok: true})
	case "get":
		loaded := false
		v, err := c.Get(ctx, time.Duration(cmd.TTLMs)*time.Millisecond, cmd.Key, func(ctx context.Context, _ string) (string, error) {
			if cmd.Fail {
				sleep(ctx, cmd.DelayMs)
				return "", errors.New("loader failure")
			}
			// The value is "computed" now (as the edge's origin records it); the delay is the rest of the load.
			// Announced before the loader returns, so it is on stdout before this get's answer.
			loaded = true
			reply(answer{ID: cmd.ID, Ok: true, Load: true})
			if err := sleep(ctx, cmd.DelayMs); err != nil {
				return "", err
			}
			return cmd.Value, nil
		})
		if err != nil {
			reply(answer{ID: cmd.ID, Error: err.Error()})
			return
		}
		reply(answer{ID: cmd.ID, Ok: true, Value: &v, Loaded: loaded && v == cmd.Value})
	default:
		reply(answer{ID: cmd.ID, Error: "unknown op " + cmd.Op})
	}
}

func sleep(ctx context.Context, ms int) error {
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
