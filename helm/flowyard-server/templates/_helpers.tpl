{{/* Names, labels, and where each secret value comes from. */}}

{{- define "flowyard-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flowyard-server.fullname" -}}
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

{{- define "flowyard-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowyard-server.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "flowyard-server.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "flowyard-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "flowyard-server.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "flowyard-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flowyard-server.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The chart's own Secret: generated values live there, kept across upgrades. */}}
{{- define "flowyard-server.secretName" -}}
{{- include "flowyard-server.fullname" . -}}
{{- end -}}

{{/* A secret value: the one in the release's Secret when it exists (upgrade), else the given or a generated one. */}}
{{- define "flowyard-server.keptValue" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "flowyard-server.secretName" .root) -}}
{{- if .given -}}
{{- .given -}}
{{- else if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- .generated -}}
{{- end -}}
{{- end -}}

{{/* name and key of the Secret for one value: the user's existing Secret, else the chart's. */}}
{{- define "flowyard-server.secretRef" -}}
name: {{ default (include "flowyard-server.secretName" .root) .existing }}
key: {{ ternary .existingKey .key (not (empty .existing)) }}
{{- end -}}

{{- define "flowyard-server.postgresqlHost" -}}
{{- printf "%s-postgresql" (include "flowyard-server.fullname" .) -}}
{{- end -}}

{{- define "flowyard-server.redisHost" -}}
{{- printf "%s-redis" (include "flowyard-server.fullname" .) -}}
{{- end -}}

{{/* Where the database and Redis are: bundled, or an external URL that must be given. */}}
{{- define "flowyard-server.checkBackends" -}}
{{- if not .Values.postgresql.enabled -}}
{{- required "externalDatabase.existingSecret is required when postgresql.enabled=false: a Secret holding the PostgreSQL URL (postgresql+psycopg2://user:pass@host:5432/db)" .Values.externalDatabase.existingSecret | trunc 0 -}}
{{- end -}}
{{- if not .Values.redis.enabled -}}
{{- required "externalRedis.existingSecret is required when redis.enabled=false: a Secret holding the Redis URL (redis://:pass@host:6379/0)" .Values.externalRedis.existingSecret | trunc 0 -}}
{{- end -}}
{{- end -}}

{{/* Environment of the API and the migration Job: database, Redis, keys. */}}
{{- define "flowyard-server.backendEnv" -}}
- name: HOME
  value: /home/flowyard
- name: FLOWYARD_HOME
  value: /home/flowyard/.flowyard
- name: TMPDIR
  value: /tmp
- name: FLOWYARD_LOG_LEVEL
  value: {{ .Values.server.logLevel | quote }}
{{- if .Values.postgresql.enabled }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- include "flowyard-server.secretRef" (dict "root" . "existing" .Values.postgresql.existingSecret "existingKey" "postgres-password" "key" "postgres-password") | nindent 6 }}
- name: FLOWYARD_DATABASE_URL
  value: {{ printf "postgresql+psycopg2://%s:$(POSTGRES_PASSWORD)@%s:5432/%s" .Values.postgresql.username (include "flowyard-server.postgresqlHost" .) .Values.postgresql.database | quote }}
{{- else }}
- name: FLOWYARD_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalDatabase.existingSecret }}
      key: {{ .Values.externalDatabase.existingSecretKey }}
{{- end }}
{{- end -}}

{{- define "flowyard-server.serverEnv" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- include "flowyard-server.secretRef" (dict "root" . "existing" .Values.redis.existingSecret "existingKey" "redis-password" "key" "redis-password") | nindent 6 }}
- name: FLOWYARD_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "flowyard-server.redisHost" .) | quote }}
{{- else }}
- name: FLOWYARD_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
{{- end }}
- name: FLOWYARD_API_KEY
  valueFrom:
    secretKeyRef:
      {{- include "flowyard-server.secretRef" (dict "root" . "existing" .Values.apiKey.existingSecret "existingKey" .Values.apiKey.existingSecretKey "key" "api-key") | nindent 6 }}
- name: FLOWYARD_SECRET_KEY
  valueFrom:
    secretKeyRef:
      {{- include "flowyard-server.secretRef" (dict "root" . "existing" .Values.secretKey.existingSecret "existingKey" .Values.secretKey.existingSecretKey "key" "secret-key") | nindent 6 }}
- name: FLOWYARD_SERVER_HOST
  value: "0.0.0.0"
- name: FLOWYARD_SERVER_PORT
  value: {{ .Values.server.port | quote }}
{{- end -}}

{{/* The writable paths of a read-only root file system. */}}
{{- define "flowyard-server.scratchMounts" -}}
- name: scratch
  mountPath: /home/flowyard
  subPath: home
- name: scratch
  mountPath: /tmp
  subPath: tmp
{{- end -}}
