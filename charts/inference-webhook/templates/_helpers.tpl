{{- define "inference-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "inference-webhook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "inference-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inference-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "inference-webhook.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "inference-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "inference-webhook.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existingSecret" -}}
{{- required "certificates.existingSecret.name is required when certificates.mode=existingSecret" .Values.certificates.existingSecret.name -}}
{{- else -}}
{{- include "inference-webhook.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* The Service DNS names the serving certificate must carry. */}}
{{- define "inference-webhook.dnsNames" -}}
{{- $svc := include "inference-webhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* Namespace label value that selects each mode. */}}
{{- define "inference-webhook.optInValue" -}}
{{- get (dict "enforce" "enabled" "warn" "warn" "audit" "audit") . -}}
{{- end -}}

{{/* The kinds and versions the engine handles (src/engine/kinds.rs; tests/manifests.rs compares). */}}
{{- define "inference-webhook.rules" -}}
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  resources: ["deployments", "statefulsets"]
  operations: ["CREATE", "UPDATE"]
  scope: Namespaced
- apiGroups: ["workloads.x-k8s.io"]
  apiVersions: ["v1alpha2", "v1alpha1"]
  resources: ["rolebasedgroups", "rolebasedgroupsets"]
  operations: ["CREATE", "UPDATE"]
  scope: Namespaced
- apiGroups: ["leaderworkerset.x-k8s.io"]
  apiVersions: ["v1"]
  resources: ["leaderworkersets"]
  operations: ["CREATE", "UPDATE"]
  scope: Namespaced
- apiGroups: ["disaggregatedset.x-k8s.io"]
  apiVersions: ["v1"]
  resources: ["disaggregatedsets"]
  operations: ["CREATE", "UPDATE"]
  scope: Namespaced
{{- end -}}

{{/*
One webhook entry. Arguments: root (the chart context), route (mutate|validate), mode,
caBundle (base64, may be empty), failurePolicy.
*/}}
{{- define "inference-webhook.entry" -}}
{{- $root := .root -}}
{{- $excluded := concat (list $root.Release.Namespace "kube-system") $root.Values.webhook.excludeNamespaces | uniq -}}
- name: {{ .mode }}.{{ .route }}.inference-webhook.io
  clientConfig:
    {{- with $root.Values.webhook.url }}
    url: {{ printf "%s/%s/%s" (trimSuffix "/" .) $.route $.mode | quote }}
    {{- else }}
    service:
      name: {{ include "inference-webhook.fullname" $root }}
      namespace: {{ $root.Release.Namespace }}
      path: /{{ .route }}/{{ .mode }}
      port: 443
    {{- end }}
    {{- with .caBundle }}
    caBundle: {{ . }}
    {{- end }}
  rules:
    {{- include "inference-webhook.rules" $root | nindent 4 }}
  namespaceSelector:
    matchExpressions:
      - key: {{ $root.Values.webhook.optInLabel }}
        operator: In
        values: [{{ include "inference-webhook.optInValue" .mode | quote }}]
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: {{ $excluded | toJson }}
  objectSelector:
    matchExpressions:
      - key: {{ $root.Values.webhook.optInLabel }}
        operator: NotIn
        values: [{{ $root.Values.webhook.optOutValue | quote }}]
  {{- if $root.Values.webhook.matchConditions }}
  # Objects being deleted are never sent (Kubernetes >= 1.28; older API servers drop the field).
  matchConditions:
    - name: not-being-deleted
      expression: "!has(object.metadata.deletionTimestamp)"
  {{- end }}
  matchPolicy: Equivalent
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
  failurePolicy: {{ .failurePolicy }}
  {{- if eq .route "mutate" }}
  reinvocationPolicy: IfNeeded
  {{- end }}
{{- end -}}

{{/* A Pod entry: CREATE only, and only pods that lack the workload label and whose controller
is of a listed kind (or a Knative ReplicaSet), so every other pod start skips the webhook. */}}
{{- define "inference-webhook.podEntry" -}}
{{- $root := .root -}}
{{- $pods := $root.Values.webhook.pods -}}
{{- $excluded := concat (list $root.Release.Namespace "kube-system") $root.Values.webhook.excludeNamespaces | uniq -}}
{{- $kinds := list -}}
{{- range $pods.ownerKinds }}{{ $kinds = append $kinds (printf "'%s'" .) }}{{ end -}}
- name: {{ .mode }}.pods.mutate.inference-webhook.io
  clientConfig:
    {{- with $root.Values.webhook.url }}
    url: {{ printf "%s/mutate/%s" (trimSuffix "/" .) $.mode | quote }}
    {{- else }}
    service:
      name: {{ include "inference-webhook.fullname" $root }}
      namespace: {{ $root.Release.Namespace }}
      path: /mutate/{{ .mode }}
      port: 443
    {{- end }}
    {{- with .caBundle }}
    caBundle: {{ . }}
    {{- end }}
  rules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      resources: ["pods"]
      operations: ["CREATE"]
      scope: Namespaced
  namespaceSelector:
    matchExpressions:
      - key: {{ $root.Values.webhook.optInLabel }}
        operator: In
        values: [{{ include "inference-webhook.optInValue" .mode | quote }}]
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: {{ $excluded | toJson }}
  objectSelector:
    matchExpressions:
      - key: {{ $root.Values.webhook.optInLabel }}
        operator: NotIn
        values: [{{ $root.Values.webhook.optOutValue | quote }}]
  matchConditions:
    - name: not-being-deleted
      expression: "!has(object.metadata.deletionTimestamp)"
    - name: lacks-the-workload-label
      expression: {{ printf "!has(object.metadata.labels) || !('%s' in object.metadata.labels)" $root.Values.labels.workload | quote }}
    - name: made-by-an-operator-that-creates-pods
      expression: {{ printf "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && (r.kind in [%s] || (r.kind == 'ReplicaSet' && has(object.metadata.labels) && 'serving.knative.dev/revision' in object.metadata.labels)))" (join ", " $kinds) | quote }}
  matchPolicy: Equivalent
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: {{ $pods.timeoutSeconds }}
  failurePolicy: Ignore
  reinvocationPolicy: IfNeeded
{{- end -}}

{{/* The policy file; its optOutLabel and optOutValue are the opt-in label key and the opt-out
value, as the objectSelector uses them. */}}
{{- define "inference-webhook.policy" -}}
labels:
  workload: {{ .Values.labels.workload | quote }}
  backend: {{ .Values.labels.backend | quote }}
  legacyBackend: {{ .Values.labels.legacyBackend | quote }}
portName: {{ .Values.portName | quote }}
supportedBackends: {{ .Values.supportedBackends | toJson }}
optOutAnnotation: {{ .Values.optOutAnnotation | quote }}
optOutLabel: {{ .Values.webhook.optInLabel | quote }}
optOutValue: {{ .Values.webhook.optOutValue | quote }}
defaultMode: {{ .Values.defaultMode }}
rules: {{ .Values.rules | toJson }}
exemptions:
  rulesAnnotation: {{ .Values.exemptions.rulesAnnotation | quote }}
  reasonAnnotation: {{ .Values.exemptions.reasonAnnotation | quote }}
  forbiddenRules: {{ .Values.exemptions.forbiddenRules | toJson }}
{{- if kindIs "slice" .Values.workloadIdentityLabels }}
workloadIdentity:
  labels: {{ .Values.workloadIdentityLabels | toJson }}
{{- end }}
{{- end -}}

{{/* The reporter's pods: same name and instance as the server, another component, so the
webhook Service never selects them. */}}
{{- define "inference-webhook.reporterSelectorLabels" -}}
app.kubernetes.io/name: {{ include "inference-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: reporter
{{- end -}}

{{- define "inference-webhook.reporterLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "inference-webhook.reporterSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
