-- R2 operations per day, bucket, action and status code, with the class R2 bills them in (R2
-- pricing page): Class A, Class B, free, or unlisted (an action on no list: not priced). Requests
-- answered 401 or 403 are not billed; every other failure is (a 412 on PutObject is Class A).
select
    date as day,
    bucket_name,
    storage_class,
    action_type,
    action_status,
    response_status_code,
    requests,
    response_bytes,
    response_object_size,
    response_status_code in (401, 403) as is_auth_failure,
    case
        when action_type in (
            'ListBuckets', 'PutBucket', 'ListObjects', 'PutObject', 'CopyObject', 'CompleteMultipartUpload',
            'CreateMultipartUpload', 'LifecycleStorageTierTransition', 'ListMultipartUploads', 'UploadPart',
            'UploadPartCopy', 'ListParts', 'PutBucketEncryption', 'PutBucketCors',
            'PutBucketLifecycleConfiguration'
        ) then 'class_a'
        when action_type in (
            'HeadBucket', 'HeadObject', 'GetObject', 'UsageSummary', 'GetBucketEncryption', 'GetBucketLocation',
            'GetBucketCors', 'GetBucketLifecycleConfiguration'
        ) then 'class_b'
        when action_type in ('DeleteObject', 'DeleteBucket', 'AbortMultipartUpload') then 'free'
        else 'unlisted'
    end as operation_class
from {{ source('cloudflare', 'r2_operations') }}
