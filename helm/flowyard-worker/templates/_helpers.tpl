{{/* Names, labels and the values every template needs. */}}

{{- define "flowyard-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flowyard-worker.fullname" -}}
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

{{- define "flowyard-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowyard-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "flowyard-worker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "flowyard-worker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The work pools, as a JSON list: worker.pool and worker.pools (at least one must be given). */}}
{{- define "flowyard-worker.pools" -}}
{{- $pools := concat (compact (list .Values.worker.pool)) (.Values.worker.pools | default list) -}}
{{- if not $pools -}}
{{- fail "worker.pool is required: the name of the work pool these workers serve (--set worker.pool=NAME), or worker.pools to serve several" -}}
{{- end -}}
{{- if ne (len $pools) (len (uniq $pools)) -}}
{{- fail "worker.pool and worker.pools name a work pool twice" -}}
{{- end -}}
{{- toJson $pools -}}
{{- end -}}

{{- define "flowyard-worker.apiUrl" -}}
{{- required "api.url is required: where the workers reach the Flowyard API (--set api.url=http://flowyard-server:4200)" .Values.api.url | trimSuffix "/" -}}
{{- end -}}

{{- define "flowyard-worker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "flowyard-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flowyard-worker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret and key holding the API key: an existing one, or the one this chart makes. */}}
{{- define "flowyard-worker.apiKeySecretName" -}}
{{- default (printf "%s-api-key" (include "flowyard-worker.fullname" .)) .Values.api.key.existingSecret -}}
{{- end -}}

{{- define "flowyard-worker.apiKeySecretKey" -}}
{{- if .Values.api.key.existingSecret -}}{{ .Values.api.key.existingSecretKey }}{{- else -}}api-key{{- end -}}
{{- end -}}

{{- define "flowyard-worker.hasApiKey" -}}
{{- if or .Values.api.key.existingSecret .Values.api.key.value -}}true{{- end -}}
{{- end -}}

{{/* The ConfigMap and key of the base job template, when one is given. */}}
{{- define "flowyard-worker.templateConfigMap" -}}
{{- if .Values.baseJobTemplate.existingConfigMap -}}
{{- .Values.baseJobTemplate.existingConfigMap -}}
{{- else if .Values.baseJobTemplate.json -}}
{{- printf "%s-base-job-template" (include "flowyard-worker.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flowyard-worker.templateKey" -}}
{{- if .Values.baseJobTemplate.existingConfigMap -}}{{ .Values.baseJobTemplate.existingConfigMapKey }}{{- else -}}base-job-template.json{{- end -}}
{{- end -}}

{{- define "flowyard-worker.jobNamespace" -}}
{{- default .Release.Namespace .Values.kubernetes.namespace -}}
{{- end -}}

{{/* Environment shared by the worker and the template init container. */}}
{{- define "flowyard-worker.env" -}}
- name: HOME
  value: /home/flowyard
- name: FLOWYARD_HOME
  value: /home/flowyard/.flowyard
- name: TMPDIR
  value: /tmp
- name: FLOWYARD_API_URL
  value: {{ include "flowyard-worker.apiUrl" . | quote }}
- name: FLOWYARD_LOG_LEVEL
  value: {{ .Values.worker.logLevel | quote }}
{{- if include "flowyard-worker.hasApiKey" . }}
- name: FLOWYARD_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "flowyard-worker.apiKeySecretName" . }}
      key: {{ include "flowyard-worker.apiKeySecretKey" . }}
{{- end }}
{{- end -}}
