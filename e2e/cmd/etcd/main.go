// Command etcd runs a single-member etcd on 127.0.0.1 for the e2e control plane.
//
// It is the etcd server library (go.etcd.io/etcd/server/v3/embed) with two settings the
// upstream defaults do not fit: the request limit is raised because the RoleBasedGroup(Set)
// CRDs are ~3 MB each (etcd's default is 1.5 MiB), and nothing listens beyond loopback.
package main

import (
	"flag"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for the member's data (required)")
	clientURL := flag.String("listen-client-url", "http://127.0.0.1:2379", "client URL (loopback only)")
	peerURL := flag.String("listen-peer-url", "http://127.0.0.1:2380", "peer URL (loopback only)")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("etcd: --data-dir is required")
	}
	client := mustLoopbackURL(*clientURL)
	peer := mustLoopbackURL(*peerURL)

	cfg := embed.NewConfig()
	cfg.Name = "e2e"
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	cfg.MaxRequestBytes = 16 << 20
	cfg.LogLevel = "warn"

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("etcd: start: %v", err)
	}
	select {
	case <-server.Server.ReadyNotify():
		log.Printf("etcd: ready on %s", client.String())
	case <-time.After(60 * time.Second):
		server.Close()
		log.Fatal("etcd: not ready after 60s")
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-stop:
	case err := <-server.Err():
		log.Printf("etcd: %v", err)
	}
	server.Close()
}

// mustLoopbackURL parses raw and refuses any host but 127.0.0.1.
func mustLoopbackURL(raw string) url.URL {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() != "127.0.0.1" {
		log.Fatalf("etcd: %q is not a 127.0.0.1 URL", raw)
	}
	return *u
}
