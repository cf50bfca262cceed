// webhookclient calls an admission webhook the way kube-apiserver's webhook client does:
// it trusts only the configured CA bundle, sets ServerName to the Service DNS name (while
// dialling the address it was given), attempts HTTP/2, posts AdmissionReview v1 bodies, and
// checks the response: the uid echoed, apiVersion/kind, and a base64 JSONPatch that decodes.
//
// Standard library only (Go 1.19), so it builds without downloading modules.
//
// Usage: webhookclient -addr 127.0.0.1:8443 -ca ca.crt -server-name svc.ns.svc -path /mutate review.json...
// Prints one JSON line per review to stdout; exits 1 on the first failed check.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

type review struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Request    json.RawMessage `json:"request,omitempty"`
	Response   *response       `json:"response,omitempty"`
}

type response struct {
	UID       string   `json:"uid"`
	Allowed   bool     `json:"allowed"`
	PatchType *string  `json:"patchType,omitempty"`
	Patch     []byte   `json:"patch,omitempty"` // base64 in JSON, decoded by encoding/json as kube does
	Warnings  []string `json:"warnings,omitempty"`
	Status    *struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	} `json:"status,omitempty"`
}

type result struct {
	File     string `json:"file"`
	Proto    string `json:"proto"`
	UID      string `json:"uid"`
	Allowed  bool   `json:"allowed"`
	PatchOps int    `json:"patchOps"`
	Warnings int    `json:"warnings"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "webhookclient: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "", "host:port to dial")
	caFile := flag.String("ca", "", "CA bundle (PEM)")
	serverName := flag.String("server-name", "", "TLS ServerName: the Service DNS name")
	path := flag.String("path", "/mutate", "request path")
	flag.Parse()

	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		fail("reading CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fail("no certificate in %s", *caFile)
	}
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs:    pool,
			ServerName: *serverName,
			MinVersion: tls.VersionTLS12,
		},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	for _, file := range flag.Args() {
		body, err := os.ReadFile(file)
		if err != nil {
			fail("reading %s: %v", file, err)
		}
		var sent review
		if err := json.Unmarshal(body, &sent); err != nil {
			fail("%s is not a review: %v", file, err)
		}
		var req struct {
			UID string `json:"uid"`
		}
		if err := json.Unmarshal(sent.Request, &req); err != nil {
			fail("%s: request: %v", file, err)
		}

		url := fmt.Sprintf("https://%s%s", *addr, *path)
		httpReq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			fail("%v", err)
		}
		httpReq.Header.Set("Content-Type", "application/json")
		httpReq.Header.Set("Accept", "application/json, */*")
		resp, err := client.Do(httpReq)
		if err != nil {
			fail("POST %s: %v", url, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fail("reading response: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			fail("%s: HTTP %d: %s", file, resp.StatusCode, raw)
		}
		var got review
		if err := json.Unmarshal(raw, &got); err != nil {
			fail("%s: response is not JSON: %v", file, err)
		}
		if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" {
			fail("%s: response apiVersion/kind %q/%q", file, got.APIVersion, got.Kind)
		}
		if got.Response == nil {
			fail("%s: no response", file)
		}
		if got.Response.UID != req.UID {
			fail("%s: uid %q echoed as %q", file, req.UID, got.Response.UID)
		}
		ops := 0
		if len(got.Response.Patch) > 0 {
			if got.Response.PatchType == nil || *got.Response.PatchType != "JSONPatch" {
				fail("%s: patch without patchType JSONPatch", file)
			}
			var patch []struct {
				Op    string          `json:"op"`
				Path  string          `json:"path"`
				Value json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(got.Response.Patch, &patch); err != nil {
				fail("%s: patch is not a JSON Patch: %v", file, err)
			}
			for _, op := range patch {
				if op.Op == "" || op.Path == "" {
					fail("%s: patch operation without op or path", file)
				}
			}
			ops = len(patch)
		}
		// The same check on raw base64 as the API server performs before decoding.
		var rawResp struct {
			Response struct {
				Patch string `json:"patch"`
			} `json:"response"`
		}
		if err := json.Unmarshal(raw, &rawResp); err == nil && rawResp.Response.Patch != "" {
			if _, err := base64.StdEncoding.DecodeString(rawResp.Response.Patch); err != nil {
				fail("%s: patch is not standard base64: %v", file, err)
			}
		}
		out, _ := json.Marshal(result{
			File: file, Proto: resp.Proto, UID: got.Response.UID,
			Allowed: got.Response.Allowed, PatchOps: ops, Warnings: len(got.Response.Warnings),
		})
		fmt.Println(string(out))
	}
}
