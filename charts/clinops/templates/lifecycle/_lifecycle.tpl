{{/* The data-lifecycle Job and CronJob share this pod spec: the lifecycle image, non-root, read-only root fs. */}}
{{- define "clinops.lifecycle.container" -}}
image: "{{ .Values.lifecycle.image.repository }}:{{ .Values.lifecycle.image.tag | default .Chart.AppVersion }}"
imagePullPolicy: {{ .Values.lifecycle.image.pullPolicy }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
resources:
  {{- toYaml .Values.lifecycle.resources | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
env:
  - name: CLINOPS_DATABASE_URL  # the owner's (clinops_owner): migrations, logins, partitions
    valueFrom:
      secretKeyRef:
        name: {{ .Values.database.migrations.secretName }}
        key: {{ .Values.database.migrations.key }}
  - name: CLINOPS_S3_ENDPOINT_URL
    value: {{ .Values.lake.endpoint | quote }}
  - name: CLINOPS_S3_REGION
    value: {{ .Values.lake.region | quote }}
  - name: CLINOPS_LAKE_BUCKET
    value: {{ .Values.lifecycle.lakeBucket | quote }}
  - name: CLINOPS_S3_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.lifecycle.lakeAdminSecret.name }}
        key: {{ .Values.lifecycle.lakeAdminSecret.accessKeyIdKey }}
  - name: CLINOPS_S3_SECRET_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.lifecycle.lakeAdminSecret.name }}
        key: {{ .Values.lifecycle.lakeAdminSecret.secretAccessKeyKey }}
  {{- range $layer, $days := .Values.lifecycle.retentionDays }}
  - name: CLINOPS_RETENTION_{{ $layer | snakecase | upper }}_DAYS
    value: {{ $days | quote }}
  {{- end }}
  - name: CLINOPS_PREDICTIONS_RETENTION_YEARS
    value: {{ .Values.lifecycle.predictionsRetentionYears | quote }}
{{- end }}

{{- define "clinops.lifecycle.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
automountServiceAccountToken: false
restartPolicy: OnFailure
volumes:
  - name: tmp
    emptyDir: {}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
