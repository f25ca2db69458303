{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "remediator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "remediator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "remediator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "remediator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "remediator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "remediator.labels" -}}
helm.sh/chart: {{ include "remediator.chart" . }}
{{ include "remediator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "remediator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "remediator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "remediator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding WEBHOOK_TOKEN: the user's, or the one this chart makes from webhookToken.value. */}}
{{- define "remediator.tokenSecretName" -}}
{{- default (include "remediator.fullname" .) .Values.webhookToken.existingSecret }}
{{- end }}

{{- define "remediator.hasToken" -}}
{{- if or .Values.webhookToken.existingSecret .Values.webhookToken.value }}true{{ end }}
{{- end }}

{{/* Secure by default: no token, no release (remediator itself refuses to start serve/receiver without one). */}}
{{- define "remediator.requireToken" -}}
{{- if not (include "remediator.hasToken" .) }}
{{- fail "webhookToken.value (16+ characters) or webhookToken.existingSecret is required: remediator runs commands because an HTTP request said so, and does not start without a token" }}
{{- end }}
{{- end }}

{{/* Where the rules come from: a ConfigMap (by value or existing), or the rules built into the image. */}}
{{- define "remediator.rulesConfigMap" -}}
{{- if .Values.rules.existingConfigMap }}
{{- .Values.rules.existingConfigMap }}
{{- else if .Values.rules.files }}
{{- printf "%s-rules" (include "remediator.fullname" .) }}
{{- end }}
{{- end }}

{{- define "remediator.rulesDir" -}}
{{- if include "remediator.rulesConfigMap" . }}/etc/remediator/rules
{{- else if eq .Values.rules.builtin "kubernetes" }}/app/rules/examples/kubernetes
{{- else }}/app/rules
{{- end }}
{{- end }}

{{/*
RBAC rules: exactly the API calls the kubernetes action makes (src/actions/kubernetes.ts), one block per
operation, each dropped when rbac.actions.<operation> is false. test/unit/deploy/rbac.test.ts compares this
with the requests recorded against a fake API server.
*/}}
{{- define "remediator.rbacRules" -}}
{{- if .Values.rbac.actions.rolloutRestart }}
# rolloutRestart: PATCH (strategic merge) of the pod template annotation
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["patch"]
{{- end }}
{{- if .Values.rbac.actions.scale }}
# scale: PATCH (merge) of the scale subresource
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["patch"]
{{- end }}
{{- if .Values.rbac.actions.deletePod }}
# deletePod
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["delete"]
{{- end }}
{{- if .Values.rbac.actions.execInPod }}
# execInPod with a selector: list the pods it matches
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# execInPod: the exec WebSocket upgrade is an HTTP GET; Kubernetes authorizes it as "create" (1.30+) or "get" (before)
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["create", "get"]
{{- end }}
{{- end }}

{{/* Environment shared by every remediator container. */}}
{{- define "remediator.env" -}}
- name: PORT
  value: {{ .Values.service.port | quote }}
- name: RULES_DIR
  value: {{ include "remediator.rulesDir" . | quote }}
{{- if .Values.redis.sentinel.nodes }}
- name: REDIS_SENTINELS
  value: {{ join "," .Values.redis.sentinel.nodes | quote }}
- name: REDIS_SENTINEL_NAME
  value: {{ .Values.redis.sentinel.masterSet | quote }}
{{- else if .Values.redis.cluster.nodes }}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," .Values.redis.cluster.nodes | quote }}
{{- else if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- if .Values.redis.username }}
- name: REDIS_USERNAME
  value: {{ .Values.redis.username | quote }}
{{- end }}
{{- if .Values.redis.password.existingSecret }}
- name: REDIS_PASSWORD_FILE
  value: /etc/remediator/redis/password
{{- end }}
{{- if and .Values.redis.sentinel.nodes .Values.redis.sentinelPassword.existingSecret }}
- name: REDIS_SENTINEL_PASSWORD_FILE
  value: /etc/remediator/redis/sentinel-password
{{- end }}
{{- if .Values.redis.tls.enabled }}
- name: REDIS_TLS
  value: "true"
{{- end }}
{{- if .Values.redis.tls.caSecret }}
- name: REDIS_CA_FILE
  value: /etc/remediator/redis/ca.crt
{{- end }}
- name: REDIS_WAIT_REPLICAS
  value: {{ .Values.redis.waitReplicas | quote }}
- name: REDIS_WAIT_TIMEOUT
  value: {{ .Values.redis.waitTimeout | quote }}
- name: QUEUE_PREFIX
  value: {{ .Values.config.queuePrefix | quote }}
{{- if .Values.routing.routes }}
- name: ROUTES_FILE
  value: /etc/remediator/routes/routes.yaml
{{- end }}
- name: WORKER_ROUTES
  value: {{ join "," .Values.routing.workerRoutes | quote }}
- name: PROMETHEUS_URL
  value: {{ .Values.prometheus.url | quote }}
{{- if .Values.alertmanager.url }}
- name: ALERTMANAGER_URL
  value: {{ .Values.alertmanager.url | quote }}
{{- end }}
{{- if .Values.escalation.webhookUrl }}
- name: ESCALATION_WEBHOOK_URL
  value: {{ .Values.escalation.webhookUrl | quote }}
{{- end }}
- name: WEBHOOK_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "remediator.tokenSecretName" . }}
      key: {{ .Values.webhookToken.secretKey }}
- name: WORKER_CONCURRENCY
  value: {{ .Values.config.workerConcurrency | quote }}
- name: DRY_RUN
  value: {{ .Values.config.dryRun | quote }}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: SHUTDOWN_TIMEOUT
  value: {{ printf "%ds" (int .Values.config.shutdownTimeoutSeconds) | quote }}
{{- range $name, $value := .Values.vars }}
- name: {{ printf "REMEDIATOR_VAR_%s" ($name | upper) }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Redis secrets as files (REDIS_PASSWORD_FILE, REDIS_SENTINEL_PASSWORD_FILE, REDIS_CA_FILE): one projected volume,
present when any of them is set.
*/}}
{{- define "remediator.redisSecretSources" -}}
{{- if .Values.redis.password.existingSecret }}
- secret:
    name: {{ .Values.redis.password.existingSecret }}
    items: [{ key: {{ .Values.redis.password.key | quote }}, path: password }]
{{- end }}
{{- if and .Values.redis.sentinel.nodes .Values.redis.sentinelPassword.existingSecret }}
- secret:
    name: {{ .Values.redis.sentinelPassword.existingSecret }}
    items: [{ key: {{ .Values.redis.sentinelPassword.key | quote }}, path: sentinel-password }]
{{- end }}
{{- if .Values.redis.tls.caSecret }}
- secret:
    name: {{ .Values.redis.tls.caSecret }}
    items: [{ key: {{ .Values.redis.tls.caKey | quote }}, path: ca.crt }]
{{- end }}
{{- end }}
