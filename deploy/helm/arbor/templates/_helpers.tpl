{{/* Names ------------------------------------------------------------------- */}}

{{- define "arbor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "arbor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "arbor.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "arbor.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The name of one service's objects: <fullname>-<service>. Takes (root, name). */}}
{{- define "arbor.serviceName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "arbor.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "arbor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "arbor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels ------------------------------------------------------------------ */}}

{{- define "arbor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arbor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: arbor
{{- end }}

{{- define "arbor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "arbor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* One service's selector labels. Takes (root, name). */}}
{{- define "arbor.serviceSelectorLabels" -}}
{{ include "arbor.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "arbor.serviceLabels" -}}
{{ include "arbor.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Image: by digest when one is given, else by tag. */}}
{{- define "arbor.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Settings ---------------------------------------------------------------- */}}

{{/*
The non-secret settings of one service, as a YAML map of environment variables.
The ConfigMap holds them for the Deployment; the migration Job, which runs before
the ConfigMap exists, gets the same map inline. Takes (root, name, service).
*/}}
{{- define "arbor.settings" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $svc := index . 2 }}
{{- $p := $svc.envPrefix }}
{{- $v := $root.Values -}}
{{ $p }}DATABASE_SCHEMA: {{ $svc.schema | quote }}
{{ $p }}HTTP_HOST: "0.0.0.0"
{{ $p }}HTTP_PORT: {{ $svc.port | quote }}
{{ $p }}LOG_LEVEL: {{ $v.config.logLevel | quote }}
{{ $p }}LOG_FORMAT: {{ $v.config.logFormat | quote }}
{{ $p }}CLOCK: {{ $v.config.clock | quote }}
{{ $p }}OIDC_ISSUER: {{ required "config.oidc.issuer is required" $v.config.oidc.issuer | quote }}
{{ $p }}OIDC_AUDIENCE: {{ required "config.oidc.audience is required" $v.config.oidc.audience | quote }}
{{ $p }}OIDC_JWKS_URL: {{ required "config.oidc.jwksUrl is required" $v.config.oidc.jwksUrl | quote }}
{{- with $v.config.otlpEndpoint }}
{{ $p }}OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{ $p }}KAFKA__BOOTSTRAP: {{ required "kafka.bootstrap is required" $v.kafka.bootstrap | quote }}
{{ $p }}KAFKA__SECURITY_PROTOCOL: {{ $v.kafka.securityProtocol | quote }}
{{ $p }}KAFKA__TOPIC_PREFIX: {{ $v.kafka.topicPrefix | quote }}
{{ $p }}KAFKA__TOPIC_PARTITIONS: {{ $v.kafka.topicPartitions | quote }}
{{ $p }}KAFKA__TOPIC_REPLICATION: {{ $v.kafka.topicReplication | quote }}
{{- with $v.kafka.saslMechanism }}
{{ $p }}KAFKA__SASL_MECHANISM: {{ . | quote }}
{{ $p }}KAFKA__SASL_USERNAME: {{ required "kafka.sasl.username is required with SASL" $v.kafka.sasl.username | quote }}
{{- end }}
{{- if $v.kafka.tls.caSecret }}
{{ $p }}KAFKA__SSL_CAFILE: {{ printf "/etc/arbor/kafka-ca/%s" $v.kafka.tls.caKey | quote }}
{{- end }}
{{- range $key := $svc.requiredEnv }}
{{- if not (index $svc.env $key) }}
{{- fail (printf "services.%s.env.%s is required" $name $key) }}
{{- end }}
{{- end }}
{{- range $key, $value := $svc.env }}
{{ $p }}{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/*
Environment entries backed by Secrets. The database URL is assembled from the
database Secret's username and password with Kubernetes' $(VAR) expansion, so the
password never appears in the chart or the ConfigMap. Takes (root, name, service).
*/}}
{{- define "arbor.secretEnv" -}}
{{- $root := index . 0 }}
{{- $svc := index . 2 }}
{{- $p := $svc.envPrefix }}
{{- $v := $root.Values }}
{{- $pg := $v.postgresql -}}
- name: ARBOR_DB_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "postgresql.existingSecret is required" $pg.existingSecret }}
      key: {{ $pg.usernameKey }}
- name: ARBOR_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $pg.existingSecret }}
      key: {{ $pg.passwordKey }}
- name: {{ $p }}DATABASE_URL
  value: {{ printf "postgresql+asyncpg://$(ARBOR_DB_USERNAME):$(ARBOR_DB_PASSWORD)@%s:%v/%s" (required "postgresql.host is required" $pg.host) $pg.port $pg.database | quote }}
{{- if $v.kafka.saslMechanism }}
- name: {{ $p }}KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required with SASL" $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.passwordKey }}
{{- end }}
{{- range $key, $ref := $svc.secretEnv }}
- name: {{ $p }}{{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secret }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}

{{/* Security ---------------------------------------------------------------- */}}

{{/* The restricted Pod Security Standard, for pods and for their containers. */}}
{{- define "arbor.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "arbor.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Whether a service is scaled by KEDA rather than by its replica count or HPA. */}}
{{- define "arbor.kedaScaled" -}}
{{- $root := index . 0 }}
{{- $svc := index . 1 }}
{{- if and $root.Values.keda.enabled $svc.keda.consumer }}true{{ end }}
{{- end }}
