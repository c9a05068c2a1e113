{{/* herd.name is the chart's name, or nameOverride. */}}
{{- define "herd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
herd.fullname names every object, and is the base of the pods' names and
so of each server's HERD_NAME (<fullname>-<index>). It stays short enough
for the pod names and the headless Service's DNS labels (63 characters).
*/}}
{{- define "herd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else if contains (include "herd.name" .) .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "herd.name" .) | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* herd.peerService is the headless Service that gives each pod its DNS name. */}}
{{- define "herd.peerService" -}}
{{- printf "%s-peer" (include "herd.fullname" .) }}
{{- end }}

{{- define "herd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "herd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "herd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- end }}

{{/* herd.peerSecretName is the Secret holding the peer secret. */}}
{{- define "herd.peerSecretName" -}}
{{- .Values.peerSecret.existingSecret | default (printf "%s-peer-secret" (include "herd.fullname" .)) }}
{{- end }}

{{/* herd.tlsSecretName is the Secret holding the peer port's certificate. */}}
{{- define "herd.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (printf "%s-peer-tls" (include "herd.fullname" .)) }}
{{- end }}

{{/*
herd.gracePeriod is terminationGracePeriodSeconds: by default the preStop
sleep plus HERD_SHUTDOWN_TIMEOUT plus 10 seconds for the journal's last
sync and the process's exit. A value that leaves no time after both is an
error, since the kubelet would kill a server with replies in flight.
*/}}
{{- define "herd.gracePeriod" -}}
{{- $need := add .Values.preStopSleepSeconds .Values.shutdownTimeoutSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $need 10 }}
{{- else if le (int64 .Values.terminationGracePeriodSeconds) (int64 $need) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than preStopSleepSeconds + shutdownTimeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $need) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}
