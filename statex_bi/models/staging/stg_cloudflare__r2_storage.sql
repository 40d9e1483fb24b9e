-- R2 storage samples (several a day, at irregular times) per bucket and storage class.
select
    sampled_at,
    date as day,
    bucket_name,
    storage_class,
    payload_size,
    metadata_size,
    payload_size + metadata_size as stored_bytes,
    object_count
from {{ source('cloudflare', 'r2_storage') }}
