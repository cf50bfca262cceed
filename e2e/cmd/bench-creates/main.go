// Command bench-creates creates N Deployments one after another through client-go and prints the
// latency distribution of the create calls, as the API server answers them (admission included).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32), // no ReplicaSet work in the background while measuring
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "vllm",
					Image: "vllm/vllm-openai:v0.10.1",
					Args:  []string{"--model", "facebook/opt-125m", "--port", "8000"},
					Ports: []corev1.ContainerPort{{ContainerPort: 8000}},
				}}},
			},
		},
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	namespace := flag.String("namespace", "default", "namespace to create in")
	count := flag.Int("count", 1000, "number of Deployments")
	prefix := flag.String("prefix", "bench", "name prefix")
	flag.Parse()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	config.QPS, config.Burst = 1000, 1000 // client-side throttling would dominate the numbers
	client := kubernetes.NewForConfigOrDie(config).AppsV1().Deployments(*namespace)
	ctx := context.Background()
	latencies := make([]time.Duration, 0, *count)
	labeled := 0
	for i := range *count {
		start := time.Now()
		created, err := client.Create(ctx, deployment(fmt.Sprintf("%s-%d", *prefix, i)), metav1.CreateOptions{})
		latencies = append(latencies, time.Since(start))
		if err != nil {
			log.Fatalf("create %d: %v", i, err)
		}
		if created.Spec.Template.Labels["alibabacloud.com/inference-workload"] != "" {
			labeled++
		}
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("creates=%d labeled=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", *count, labeled,
		ms(percentile(latencies, 0.50)), ms(percentile(latencies, 0.90)),
		ms(percentile(latencies, 0.99)), ms(latencies[len(latencies)-1]))
}
