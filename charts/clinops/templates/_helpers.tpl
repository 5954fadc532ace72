{{/* Chart name, truncated to a DNS label. */}}
{{- define "clinops.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name of the operator's objects. */}}
{{- define "clinops.operator.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* chart label: name-version. */}}
{{- define "clinops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of the operator. */}}
{{- define "clinops.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clinops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Standard labels of every operator object. */}}
{{- define "clinops.operator.labels" -}}
helm.sh/chart: {{ include "clinops.chart" . }}
{{ include "clinops.operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: clinops
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The operator's service account name. */}}
{{- define "clinops.operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "clinops.operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
