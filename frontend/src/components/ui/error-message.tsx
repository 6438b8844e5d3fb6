import { useEffect, useState } from 'react';

import { describeError, formatWait } from '@/lib/api-errors';

type Props = {
  error: unknown;
  onDismiss?: () => void;
  /** Names the paths of validation_failed in words (e.g. inside a rule). */
  fieldLabel?: (path: string) => string;
};

/** An API or other error, in words a person understands. */
export function ErrorMessage({ error, onDismiss, fieldLabel }: Props) {
  const description = describeError(error, { fieldLabel });
  const [remaining, setRemaining] = useState(description.retryAfter);

  useEffect(() => {
    setRemaining(description.retryAfter);
    if (!description.retryAfter) return undefined;
    const timer = setInterval(() => setRemaining((s) => (s && s > 1 ? s - 1 : null)), 1000);
    return () => clearInterval(timer);
  }, [error, description.retryAfter]);

  const message =
    description.code === 'rate_limited'
      ? remaining
        ? `You're doing that too often. Please try again in ${formatWait(remaining)}.`
        : "You're doing that too often. You can try again now."
      : description.message;

  return (
    <div className="error-message" role="alert" data-error-code={description.code}>
      <p>{message}</p>
      {description.fields.length > 0 && (
        <ul>
          {description.fields.map((field) => (
            <li key={`${field.field}:${field.message}`}>
              <strong>{field.field}:</strong> {field.message}
            </li>
          ))}
        </ul>
      )}
      {description.detail && <p className="error-detail">{description.detail}</p>}
      {onDismiss && (
        <button type="button" className="button link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}
