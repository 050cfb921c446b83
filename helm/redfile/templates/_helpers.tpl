{{/* Names ------------------------------------------------------------------------- */}}
{{- define "redfile.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "redfile.fullname" -}}
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

{{/* The name of one component's objects: <fullname>-<component>.  Call with (list $ "auth"). */}}
{{- define "redfile.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "redfile.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "redfile.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels --------------------------------------------------------------------------
     Selector labels never change between releases (a StatefulSet's and a Deployment's
     selector, and volumeClaimTemplates, are immutable): name, instance, component only.
     Version and chart go on metadata labels only. */}}
{{- define "redfile.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "redfile.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "redfile.labels" -}}
{{- $root := index . 0 -}}
{{ include "redfile.selectorLabels" . }}
app.kubernetes.io/part-of: redfile
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ include "redfile.chart" $root }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Images ---------------------------------------------------------------------------- */}}
{{- define "redfile.imageRef" -}}
{{- $image := index . 0 -}}
{{- $default := index . 1 -}}
{{- $repo := $image.repository -}}
{{- if $image.registry }}{{ $repo = printf "%s/%s" $image.registry $image.repository }}{{ end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repo $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default $default $image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{- define "redfile.image" -}}
{{- include "redfile.imageRef" (list .Values.image .Chart.AppVersion) -}}
{{- end -}}

{{- define "redfile.redisImage" -}}
{{- include "redfile.imageRef" (list .Values.redis.image "") -}}
{{- end -}}

{{/* Secrets ---------------------------------------------------------------------------- */}}
{{- define "redfile.secretName" -}}
{{- default (include "redfile.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The Secret holding the Redis passwords, one key per ACL user (internal or external Redis). */}}
{{- define "redfile.redisSecretName" -}}
{{- if .Values.redis.enabled -}}
{{- default (include "redfile.componentName" (list . "redis")) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- default (include "redfile.componentName" (list . "redis")) .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "redfile.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s:%d/0" (include "redfile.componentName" (list . "redis")) (int .Values.redis.service.port) -}}
{{- else -}}
{{- $url := required "externalRedis.url is required when redis.enabled=false" .Values.externalRedis.url -}}
{{- if contains "@" $url -}}
{{- fail "externalRedis.url must not hold credentials: give them as externalRedis.passwords or externalRedis.existingSecret" -}}
{{- end -}}
{{- $url -}}
{{- end -}}
{{- end -}}

{{/* The Redis ACL user of a service ("" = no user: a requirepass-only external Redis). */}}
{{- define "redfile.redisUsername" -}}
{{- $root := index . 0 -}}
{{- $svc := index . 1 -}}
{{- if $root.Values.redis.enabled -}}
{{- printf "redfile-%s" $svc -}}
{{- else -}}
{{- index $root.Values.externalRedis.usernames $svc -}}
{{- end -}}
{{- end -}}

{{/* The Redis password key (in the Redis Secret) of a service. */}}
{{- define "redfile.redisPasswordKey" -}}
{{- printf "redfile-%s" (index . 1) -}}
{{- end -}}

{{/* Checksums of what a pod reads at start, so a change rolls the pods. */}}
{{- define "redfile.appChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- if or (and .Values.redis.enabled (not .Values.redis.auth.existingSecret)) (and (not .Values.redis.enabled) (not .Values.externalRedis.existingSecret)) }}
checksum/redis-secret: {{ include (print .Template.BasePath "/redis/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}

{{/* Hardened container securityContext (non-root, read-only root, no capabilities). */}}
{{- define "redfile.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}


{{/* A PodDisruptionBudget's budget: minAvailable when set, else maxUnavailable (default 1). */}}
{{- define "redfile.pdbBudget" -}}
{{- if not (kindIs "invalid" .minAvailable) -}}
minAvailable: {{ .minAvailable }}
{{- else if not (kindIs "invalid" .maxUnavailable) -}}
maxUnavailable: {{ .maxUnavailable }}
{{- else -}}
maxUnavailable: 1
{{- end -}}
{{- end -}}

{{/* Where users reach Redfile: config.publicUrl, else the first ingress host (https when a TLS entry names it). */}}
{{- define "redfile.publicUrl" -}}
{{- if .Values.config.publicUrl -}}
{{- .Values.config.publicUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- $host := first .Values.ingress.hosts -}}
{{- $scheme := "http" -}}
{{- range .Values.ingress.tls -}}
{{- if has $host (.hosts | default list) -}}{{- $scheme = "https" -}}{{- end -}}
{{- end -}}
{{- printf "%s://%s" $scheme $host -}}
{{- end -}}
{{- end -}}
