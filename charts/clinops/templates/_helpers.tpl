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

{{/* The platform image (every component but the trainer), tag defaulting to the appVersion. */}}
{{- define "clinops.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The restricted container security context every component runs with. */}}
{{- define "clinops.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod security context every component runs with. */}}
{{- define "clinops.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* CLINOPS_S3_* from a component's own lake Secret: pass (list $ "scorer"); the scorer reads the offline
     store (batch scoring), the monitor silver outcomes. */}}
{{- define "clinops.lakeEnv" -}}
{{- $root := index . 0 }}
{{- $secret := index $root.Values.lake.componentSecrets (index . 1) }}
{{- $keys := $root.Values.lake.credentialsSecret }}
- name: CLINOPS_S3_ENDPOINT_URL
  value: {{ $root.Values.lake.endpoint | quote }}
- name: CLINOPS_S3_REGION
  value: {{ $root.Values.lake.region | quote }}
- name: CLINOPS_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.accessKeyIdKey }}
- name: CLINOPS_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.secretAccessKeyKey }}
{{- end -}}

{{/* Labels of a platform component: pass (dict "root" $ "component" "scorer" "extra" (dict ...)). */}}
{{- define "clinops.componentLabels" -}}
helm.sh/chart: {{ include "clinops.chart" .root }}
app.kubernetes.io/name: {{ include "clinops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: clinops
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress to the stores: pass (list $ (list "redis" "s3" ...)). */}}
{{- define "clinops.storeEgress" -}}
{{- $root := index . 0 }}{{- $ports := index . 1 }}
- ports:
    {{- range $ports }}
    - protocol: TCP
      port: {{ index $root.Values.networkPolicy.storePorts . }}
    {{- end }}
  {{- with $root.Values.networkPolicy.storesPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
