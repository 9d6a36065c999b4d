{{/* Names, labels and the pieces every component's pod shares. */}}

{{- define "bytereview.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bytereview.fullname" -}}
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

{{- define "bytereview.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bytereview.labels" -}}
helm.sh/chart: {{ include "bytereview.chart" . }}
{{ include "bytereview.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bytereview
{{- end }}

{{- define "bytereview.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bytereview.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "bytereview.componentLabels" -}}
{{ include "bytereview.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "bytereview.componentSelector" -}}
{{ include "bytereview.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Name of a cluster-scoped object: the namespace is in it, so that releases of the same
  name in two namespaces do not claim the same ClusterRole or peering object. */}}
{{- define "bytereview.clusterScopedName" -}}
{{- printf "%s-%s" .Release.Namespace (include "bytereview.fullname" .) }}
{{- end }}

{{- define "bytereview.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bytereview.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bytereview.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "bytereview.secretName" -}}
{{- default (printf "%s-secrets" (include "bytereview.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "bytereview.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s-nats:4222" .Release.Name }}
{{- else }}
{{- required "externalNats.url is required when nats.enabled is false" .Values.externalNats.url }}
{{- end }}
{{- end }}

{{- define "bytereview.jobsAddr" -}}
{{- printf "%s-jobs:%d" (include "bytereview.fullname" .) (int .Values.jobs.port) }}
{{- end }}

{{/* Environment shared by every component. */}}
{{- define "bytereview.env" -}}
- name: BYTEREVIEW_ENV
  value: production
- name: BYTEREVIEW_LOG_JSON
  value: "true"
- name: BYTEREVIEW_NATS_URL
  value: {{ include "bytereview.natsUrl" . | quote }}
- name: BYTEREVIEW_JOBS_ADDR
  value: {{ include "bytereview.jobsAddr" . | quote }}
- name: BYTEREVIEW_INGEST_ADDR
  value: {{ printf "%s-ingest:%d" (include "bytereview.fullname" .) (int .Values.ingest.port) | quote }}
- name: BYTEREVIEW_EXTRACT_ADDR
  value: {{ printf "%s-extract:%d" (include "bytereview.fullname" .) (int .Values.extract.port) | quote }}
- name: BYTEREVIEW_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
- name: BYTEREVIEW_DATA_DIR
  value: /tmp/bytereview
- name: BYTEREVIEW_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if .Values.postgresql.enabled }}
- name: BYTEREVIEW_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-postgresql" .Release.Name }}
      key: {{ .Values.postgresql.auth.secretKeys.userPasswordKey }}
- name: BYTEREVIEW_DATABASE_URL
  value: {{ printf "postgresql+asyncpg://%s:$(BYTEREVIEW_DATABASE_PASSWORD)@%s-postgresql:5432/%s" .Values.postgresql.auth.username .Release.Name .Values.postgresql.auth.database | quote }}
{{- else }}
- name: BYTEREVIEW_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "bytereview.secretName" . }}
      key: database-url
{{- end }}
- name: BYTEREVIEW_SIGNING_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "bytereview.secretName" . }}
      key: signing-secret
- name: BYTEREVIEW_WORKER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "bytereview.secretName" . }}
      key: worker-token
{{- if eq .Values.storage.backend "gcs" }}
{{- if .Values.storage.gcs.credentialsSecret }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: /var/run/secrets/gcs/key.json
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes every component needs: a writable /tmp and the object storage.
  (dict "root" $), optionally "tmpSizeLimit" (a quantity: the workers' /tmp, where they copy
  the files they read, is bounded). */}}
{{- define "bytereview.volumes" -}}
{{- $root := .root -}}
- name: tmp
  {{- if .tmpSizeLimit }}
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit | quote }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- if eq $root.Values.storage.backend "local" }}
- name: storage
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-storage" (include "bytereview.fullname" $root)) $root.Values.storage.local.existingClaim }}
{{- else if $root.Values.storage.gcs.credentialsSecret }}
- name: gcs-credentials
  secret:
    secretName: {{ $root.Values.storage.gcs.credentialsSecret }}
{{- end }}
{{- end }}

{{- define "bytereview.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.storage.backend "local" }}
- name: storage
  mountPath: /var/lib/bytereview/storage
{{- else if .Values.storage.gcs.credentialsSecret }}
- name: gcs-credentials
  mountPath: /var/run/secrets/gcs
  readOnly: true
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every component: (dict "root" $ "values" .Values.gateway),
  optionally "serviceAccount" (a name) and "automount" (true: mount its token). */}}
{{- define "bytereview.podSpec" -}}
serviceAccountName: {{ .serviceAccount | default (include "bytereview.serviceAccountName" .root) }}
automountServiceAccountToken: {{ .automount | default false }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Annotations that roll the pods when configuration changes. */}}
{{- define "bytereview.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* The container's envFrom: the ConfigMap of non-secret settings. */}}
{{- define "bytereview.envFrom" -}}
- configMapRef:
    name: {{ include "bytereview.fullname" . }}-config
{{- end }}

{{/* The peering object the operator replicas share (cluster-scoped when not namespaced). */}}
{{- define "bytereview.peeringName" -}}
{{- if .Values.operator.namespaced }}
{{- include "bytereview.fullname" . }}-operator
{{- else }}
{{- include "bytereview.clusterScopedName" . }}-operator
{{- end }}
{{- end }}
