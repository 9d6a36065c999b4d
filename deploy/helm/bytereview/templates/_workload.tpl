{{/*
One component's Deployment. Parameters (dict):
  root       the chart's root context ($)
  component  gateway | jobs | ingest | extract
  values     the component's values block
  port       the container's serving port
  grpc       true: a gRPC service (gRPC health probes); false: HTTP /healthz and /readyz
  replicas   omitted for the pools the operator scales
  extraEnv   optional list of env entries
*/}}
{{- define "bytereview.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "bytereview.fullname" $root }}-{{ .component }}
  labels:
    {{- include "bytereview.componentLabels" (dict "root" $root "component" .component) | nindent 4 }}
spec:
  {{- if hasKey . "replicas" }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "bytereview.componentSelector" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "bytereview.componentSelector" (dict "root" $root "component" .component) | nindent 8 }}
      annotations:
        {{- include "bytereview.podAnnotations" $root | nindent 8 }}
    spec:
      {{- include "bytereview.podSpec" (dict "root" $root "values" .values) | nindent 6 }}
      terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds | default 60 }}
      volumes:
        {{- include "bytereview.volumes" (dict "root" $root "tmpSizeLimit" .values.tmpSizeLimit) | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "bytereview.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ .component | quote }}]
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          envFrom:
            {{- include "bytereview.envFrom" $root | nindent 12 }}
          env:
            {{- include "bytereview.env" $root | nindent 12 }}
            {{- if .grpc }}
            - name: BYTEREVIEW_GRPC_PORT
              value: {{ .port | quote }}
            {{- end }}
            - name: BYTEREVIEW_DRAIN_GRACE_SECONDS
              value: {{ sub (.values.terminationGracePeriodSeconds | default 60) 5 | quote }}
            {{- with .extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: {{ ternary "grpc" "http" .grpc }}
              containerPort: {{ .port }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
          {{- if .grpc }}
          startupProbe:
            grpc: {port: {{ .port }}}
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            grpc: {port: {{ .port }}}
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            grpc: {port: {{ .port }}}
            periodSeconds: 5
          {{- else }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
          {{- end }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          volumeMounts:
            {{- include "bytereview.volumeMounts" $root | nindent 12 }}
{{- end }}

{{/* A PodDisruptionBudget for one component: (dict "root" $ "component" "jobs" "pdb" .Values.jobs.pdb) */}}
{{- define "bytereview.pdb" -}}
{{- if .pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "bytereview.fullname" .root }}-{{ .component }}
  labels:
    {{- include "bytereview.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  {{- if hasKey .pdb "minAvailable" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "bytereview.componentSelector" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}
{{- end }}

{{/* A ClusterIP Service for one component: (dict "root" $ "component" "jobs" "port" 50051 "name" "grpc") */}}
{{- define "bytereview.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "bytereview.fullname" .root }}-{{ .component }}
  labels:
    {{- include "bytereview.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "bytereview.componentSelector" (dict "root" .root "component" .component) | nindent 4 }}
  ports:
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      {{- if eq .name "grpc" }}
      appProtocol: grpc
      {{- end }}
    - name: metrics
      port: {{ .root.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
{{- end }}

{{/* The WorkerPool the operator scales one worker Deployment with. */}}
{{- define "bytereview.workerpool" -}}
{{- if gt (int .values.minReplicas) (int .values.maxReplicas) }}
{{- fail (printf "%s.minReplicas (%d) must not exceed %s.maxReplicas (%d)" .component (int .values.minReplicas) .component (int .values.maxReplicas)) }}
{{- end }}
apiVersion: autoscaling.bytereview.io/v1alpha1
kind: WorkerPool
metadata:
  name: {{ include "bytereview.fullname" .root }}-{{ .component }}
  labels:
    {{- include "bytereview.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  deployment: {{ include "bytereview.fullname" .root }}-{{ .component }}
  stream: {{ .stream }}
  consumer: {{ .consumer }}
  minReplicas: {{ .values.minReplicas }}
  maxReplicas: {{ .values.maxReplicas }}
  perReplicaConcurrency: {{ .concurrency }}
  expectedTaskSeconds: {{ .values.expectedTaskSeconds }}
  targetDrainSeconds: {{ .values.targetDrainSeconds }}
  {{- with .values.targetWaitSeconds }}
  targetWaitSeconds: {{ . }}
  {{- end }}
  scaleDownStabilizationSeconds: {{ .values.scaleDownStabilizationSeconds }}
{{- end }}
