{{/* Names ------------------------------------------------------------------------------------------- */}}

{{- define "cok.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cok.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels: the standard app.kubernetes.io set. Call with (dict "ctx" $ "component" "gateway"). ----- */}}

{{- define "cok.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cok.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "cok.labels" -}}
{{ include "cok.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: cloud-or-k8s
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{/* The call graph: which services each service calls. NetworkPolicies and upstream URLs come from here. */}}
{{- define "cok.upstreams" -}}
gateway: [orders, inventory]
orders: [inventory]
inventory: []
{{- end -}}

{{/* "true" when the services list + watch EndpointSlices through the API server (style hybrid), else "". That
one fact drives the token mount, the Role/RoleBinding and the API server egress. */}}
{{- define "cok.watchesEndpointSlices" -}}
{{- if eq .Values.style "hybrid" -}}true{{- end -}}
{{- end -}}

{{- define "cok.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "cok.collectorEndpoint" -}}
{{- printf "http://%s-otel-collector:4318" (include "cok.fullname" .) -}}
{{- end -}}

{{- define "cok.jaegerEndpoint" -}}
{{- if .Values.otel.jaegerEndpoint -}}
{{- .Values.otel.jaegerEndpoint -}}
{{- else -}}
{{- printf "%s-jaeger:4317" (include "cok.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Hardened security contexts, shared by every pod and container of the chart. ------------------------ */}}

{{- define "cok.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cok.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Quantities, for the ResourceQuota sum: CPU in millicores, memory in MiB (the schema allows only these forms). */}}

{{- define "cok.milliCPU" -}}
{{- $v := toString . -}}
{{- if hasSuffix "m" $v -}}
{{- trimSuffix "m" $v | int -}}
{{- else -}}
{{- mulf (float64 $v) 1000 | ceil | int -}}
{{- end -}}
{{- end -}}

{{- define "cok.mebibytes" -}}
{{- $v := toString . -}}
{{- if hasSuffix "Gi" $v -}}
{{- mul (trimSuffix "Gi" $v | int) 1024 -}}
{{- else -}}
{{- trimSuffix "Mi" $v | int -}}
{{- end -}}
{{- end -}}

{{/* Largest number of pods a service can have at once: HPA maximum (or replicas) plus the rolling-update surge. */}}
{{- define "cok.maxPods" -}}
{{- $svc := .svc -}}
{{- $n := int $svc.replicas -}}
{{- if $svc.autoscaling.enabled -}}
{{- $n = max $n (int $svc.autoscaling.maxReplicas) -}}
{{- end -}}
{{- add $n (int .ctx.Values.rollingUpdate.maxSurge) -}}
{{- end -}}

{{/* DNS egress rule, shared by every NetworkPolicy that allows egress. */}}
{{- define "cok.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}
