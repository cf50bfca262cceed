// Command injector-webhook is a second mutating webhook for the reinvocation scenario: like a
// sidecar injector, it appends a vLLM container to a Deployment's pod template. It is ordered
// after inference-webhook (configurations run in name order), so inference-webhook first sees
// no engine, and only its reinvocation (reinvocationPolicy: IfNeeded) can label the result.
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"log"
	"net/http"
)

// The container it injects (a vLLM server on 8000, the engine's default metrics port).
const injected = `[{"op":"add","path":"/spec/template/spec/containers/-","value":` +
	`{"name":"engine","image":"vllm/vllm-openai:v0.10.1","args":["--model","facebook/opt-125m","--port","8000"]}}]`

type review struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID    string          `json:"uid"`
		Object json.RawMessage `json:"object"`
	} `json:"request,omitempty"`
	Response *response `json:"response,omitempty"`
}

type response struct {
	UID       string `json:"uid"`
	Allowed   bool   `json:"allowed"`
	PatchType string `json:"patchType,omitempty"`
	Patch     string `json:"patch,omitempty"`
}

// hasEngine reports whether the pod template already has the injected container.
func hasEngine(object json.RawMessage) bool {
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct{ Name string } `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if json.Unmarshal(object, &d) != nil {
		return true // unreadable: leave it alone
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "engine" {
			return true
		}
	}
	return false
}

func inject(w http.ResponseWriter, r *http.Request) {
	var in review
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
		http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
		return
	}
	out := review{APIVersion: in.APIVersion, Kind: in.Kind,
		Response: &response{UID: in.Request.UID, Allowed: true}}
	if !hasEngine(in.Request.Object) {
		out.Response.PatchType = "JSONPatch"
		out.Response.Patch = base64.StdEncoding.EncodeToString([]byte(injected))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "HTTPS address")
	cert := flag.String("tls-cert", "", "serving certificate (PEM)")
	key := flag.String("tls-key", "", "its key (PEM)")
	flag.Parse()
	http.HandleFunc("/inject", inject)
	log.Printf("injector-webhook: listening on %s", *listen)
	log.Fatal(http.ListenAndServeTLS(*listen, *cert, *key, nil))
}
