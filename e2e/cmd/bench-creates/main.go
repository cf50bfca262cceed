// Command bench-creates creates N objects one after another through client-go and prints the
// latency distribution of the create calls, as the API server answers them (admission included).
//
//	--kind deployment (default): vLLM Deployments with replicas 0.
//	--kind pod: vLLM Pods, as a controller makes them: --owner API,KIND,NAME,UID adds a
//	controller ownerReference, --labels K=V,... labels (e.g. an operator's, or the workload label
//	a labeled template stamps).
//	--dry-run: server-side dry run (e2e/bench's probes: which webhook answers now).
//
// "labeled" counts the created objects whose pod template (Deployment) or metadata (Pod) came back
// with the workload label.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const workloadLabel = "alibabacloud.com/inference-workload"

func vllm() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name:  "vllm",
		Image: "vllm/vllm-openai:v0.10.1",
		Args:  []string{"--model", "facebook/opt-125m", "--port", "8000"},
		Ports: []corev1.ContainerPort{{ContainerPort: 8000}},
	}}}
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32), // no ReplicaSet work in the background while measuring
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: vllm()},
		},
	}
}

func pod(name string, labels map[string]string, owners []metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: owners},
		Spec:       vllm(),
	}
}

// ownerFlag parses API,KIND,NAME,UID into a controller ownerReference.
func ownerFlag(value string) ([]metav1.OwnerReference, error) {
	if value == "" {
		return nil, nil
	}
	f := strings.Split(value, ",")
	if len(f) != 4 {
		return nil, fmt.Errorf("--owner %q: want API,KIND,NAME,UID", value)
	}
	yes := true
	return []metav1.OwnerReference{{APIVersion: f[0], Kind: f[1], Name: f[2], UID: types.UID(f[3]),
		Controller: &yes, BlockOwnerDeletion: &yes}}, nil
}

// labelsFlag parses K=V,K=V.
func labelsFlag(value string) (map[string]string, error) {
	labels := map[string]string{}
	for _, kv := range strings.Split(value, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--labels: %q is not K=V", kv)
		}
		labels[k] = v
	}
	return labels, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	namespace := flag.String("namespace", "default", "namespace to create in")
	count := flag.Int("count", 1000, "number of objects")
	prefix := flag.String("prefix", "bench", "name prefix")
	kind := flag.String("kind", "deployment", "deployment or pod")
	owner := flag.String("owner", "", "pods: controller ownerReference API,KIND,NAME,UID")
	labelList := flag.String("labels", "", "pods: labels K=V,K=V")
	dryRun := flag.Bool("dry-run", false, "server-side dry run: admission runs, nothing is stored")
	flag.Parse()
	owners, err := ownerFlag(*owner)
	if err != nil {
		log.Fatal(err)
	}
	labels, err := labelsFlag(*labelList)
	if err != nil {
		log.Fatal(err)
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	config.QPS, config.Burst = 1000, 1000 // client-side throttling would dominate the numbers
	client := kubernetes.NewForConfigOrDie(config)
	ctx := context.Background()
	options := metav1.CreateOptions{}
	if *dryRun {
		options.DryRun = []string{metav1.DryRunAll}
	}
	// create makes object i and reports whether it came back with the workload label.
	var create func(name string) (bool, error)
	switch *kind {
	case "deployment":
		deployments := client.AppsV1().Deployments(*namespace)
		create = func(name string) (bool, error) {
			created, err := deployments.Create(ctx, deployment(name), options)
			return err == nil && created.Spec.Template.Labels[workloadLabel] != "", err
		}
	case "pod":
		pods := client.CoreV1().Pods(*namespace)
		create = func(name string) (bool, error) {
			created, err := pods.Create(ctx, pod(name, labels, owners), options)
			return err == nil && created.Labels[workloadLabel] != "", err
		}
	default:
		log.Fatalf("--kind %q: deployment or pod", *kind)
	}
	latencies := make([]time.Duration, 0, *count)
	labeled := 0
	for i := range *count {
		start := time.Now()
		isLabeled, err := create(fmt.Sprintf("%s-%d", *prefix, i))
		latencies = append(latencies, time.Since(start))
		if err != nil {
			log.Fatalf("create %d: %v", i, err)
		}
		if isLabeled {
			labeled++
		}
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("creates=%d labeled=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", *count, labeled,
		ms(percentile(latencies, 0.50)), ms(percentile(latencies, 0.90)),
		ms(percentile(latencies, 0.99)), ms(latencies[len(latencies)-1]))
}
