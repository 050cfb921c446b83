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

{{/* Redis topology ---------------------------------------------------------------------
     What the chart runs: standalone | sentinel | cluster, or external (redis.mode external, or
     redis.enabled=false, its older spelling). */}}
{{- define "redfile.redisMode" -}}
{{- $mode := .Values.redis.mode | default "standalone" -}}
{{- if not .Values.redis.enabled -}}
{{- if not (has $mode (list "standalone" "external")) -}}
{{- fail (printf "redis.enabled=false means an external Redis but redis.mode=%s asks the chart to run one: set redis.mode=external (or redis.enabled=true)" $mode) -}}
{{- end -}}
external
{{- else -}}
{{- $mode -}}
{{- end -}}
{{- end -}}

{{/* "true" when the chart runs Redis, "" when it is external. */}}
{{- define "redfile.redisBundled" -}}
{{- if ne (include "redfile.redisMode" .) "external" }}true{{ end -}}
{{- end -}}

{{/* REDIS_MODE of the services. */}}
{{- define "redfile.redisClientMode" -}}
{{- $mode := include "redfile.redisMode" . -}}
{{- if eq $mode "external" }}{{ .Values.externalRedis.mode | default "standalone" }}{{ else }}{{ $mode }}{{ end -}}
{{- end -}}

{{/* The number of Redis pods the chart runs. */}}
{{- define "redfile.redisPods" -}}
{{- $mode := include "redfile.redisMode" . -}}
{{- if eq $mode "cluster" -}}
{{- mul (int .Values.redis.cluster.primaries) (add1 (int .Values.redis.cluster.replicasPerPrimary)) -}}
{{- else if eq $mode "sentinel" -}}
{{- int .Values.redis.sentinel.replicas -}}
{{- else -}}
1
{{- end -}}
{{- end -}}

{{/* The stable DNS name of one Redis pod (the headless Service's record).  Call with (list $ ordinal). */}}
{{- define "redfile.redisPodHost" -}}
{{- $root := index . 0 -}}
{{- $name := include "redfile.componentName" (list $root "redis") -}}
{{- printf "%s-%d.%s-headless.%s.svc" $name (int (index . 1)) $name $root.Release.Namespace -}}
{{- end -}}

{{/* REDIS_SENTINELS: the sentinel beside each bundled Redis pod, or externalRedis.sentinels. */}}
{{- define "redfile.redisSentinels" -}}
{{- $hosts := list -}}
{{- if include "redfile.redisBundled" . -}}
{{- range $i := until (int .Values.redis.sentinel.replicas) -}}
{{- $hosts = append $hosts (printf "%s:26379" (include "redfile.redisPodHost" (list $ $i))) -}}
{{- end -}}
{{- else -}}
{{- $hosts = required "externalRedis.sentinels (host:port of each sentinel) is required when externalRedis.mode=sentinel" .Values.externalRedis.sentinels -}}
{{- end -}}
{{- join "," $hosts -}}
{{- end -}}

{{- define "redfile.redisSentinelMaster" -}}
{{- if include "redfile.redisBundled" . -}}
{{- .Values.redis.sentinel.masterName -}}
{{- else -}}
{{- required "externalRedis.sentinelMaster (the name the sentinels know the primary by) is required when externalRedis.mode=sentinel" .Values.externalRedis.sentinelMaster -}}
{{- end -}}
{{- end -}}

{{/* "true" when the sentinels ask for a password (the key "sentinel" of the Redis Secret). */}}
{{- define "redfile.redisSentinelAuth" -}}
{{- if eq (include "redfile.redisClientMode" .) "sentinel" -}}
{{- if include "redfile.redisBundled" . }}{{ if .Values.redis.sentinel.auth }}true{{ end }}{{ else if .Values.externalRedis.sentinelAuth }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/* Values that contradict each other, refused at render time. */}}
{{- define "redfile.checkRedis" -}}
{{- $mode := include "redfile.redisMode" . -}}
{{- $wait := int .Values.redis.waitReplicas -}}
{{- if and (eq $mode "standalone") (gt $wait 0) -}}
{{- fail "redis.waitReplicas must be 0 with redis.mode=standalone: it has no replica to wait for" -}}
{{- else if and (eq $mode "cluster") (gt $wait (int .Values.redis.cluster.replicasPerPrimary)) -}}
{{- fail (printf "redis.waitReplicas=%d but each primary has %d replicas (redis.cluster.replicasPerPrimary): every write would answer 503" $wait (int .Values.redis.cluster.replicasPerPrimary)) -}}
{{- else if and (eq $mode "sentinel") (ge $wait (int .Values.redis.sentinel.replicas)) -}}
{{- fail (printf "redis.waitReplicas=%d but the primary has %d replicas (redis.sentinel.replicas - 1): every write would answer 503" $wait (sub (int .Values.redis.sentinel.replicas) 1)) -}}
{{- end -}}
{{- if and (eq $mode "sentinel") (gt (int .Values.redis.sentinel.quorum) (int .Values.redis.sentinel.replicas)) -}}
{{- fail "redis.sentinel.quorum must not exceed redis.sentinel.replicas (one sentinel per pod)" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the Redis passwords, one key per ACL user (internal or external Redis). */}}
{{- define "redfile.redisSecretName" -}}
{{- if include "redfile.redisBundled" . -}}
{{- default (include "redfile.componentName" (list . "redis")) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- default (include "redfile.componentName" (list . "redis")) .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* REDIS_URL: the bundled Redis's Service (any node of a cluster), or externalRedis.url; "" for a
     Sentinel set-up that names none (the sentinels give the primary). */}}
{{- define "redfile.redisUrl" -}}
{{- $mode := include "redfile.redisMode" . -}}
{{- if eq $mode "sentinel" -}}
{{- else if ne $mode "external" -}}
{{- printf "redis://%s:%d/0" (include "redfile.componentName" (list . "redis")) (int .Values.redis.service.port) -}}
{{- else -}}
{{- $url := .Values.externalRedis.url -}}
{{- if ne (include "redfile.redisClientMode" .) "sentinel" -}}
{{- $url = required "externalRedis.url is required when redis.mode=external (or redis.enabled=false)" $url -}}
{{- end -}}
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
{{- if include "redfile.redisBundled" $root -}}
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
{{- $bundled := include "redfile.redisBundled" . }}
{{- if or (and $bundled (not .Values.redis.auth.existingSecret)) (and (not $bundled) (not .Values.externalRedis.existingSecret)) }}
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

{{/* What the scripts of a sentinel or cluster node read: its own names and the set-up's.
     Call with (list $ hosts). */}}
{{- define "redfile.redisPodEnv" -}}
{{- $root := index . 0 -}}
{{- $hosts := index . 1 -}}
{{- $name := include "redfile.componentName" (list $root "redis") -}}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: REDIS_SELF
  value: $(POD_NAME).{{ $name }}-headless.$(POD_NAMESPACE).svc
{{- if eq (include "redfile.redisMode" $root) "sentinel" }}
- name: REDIS_SENTINEL_HOSTS
  value: {{ join " " $hosts | quote }}
- name: REDIS_FIRST_PRIMARY
  value: {{ first $hosts | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ $root.Values.redis.sentinel.masterName | quote }}
{{- if $root.Values.redis.sentinel.auth }}
- name: REDIS_SENTINEL_PASSWORD_FILE
  value: /run/secrets/redis/sentinel
{{- end }}
{{- end }}
{{- end -}}
