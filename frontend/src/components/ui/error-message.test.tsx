// @vitest-environment jsdom
import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import { ApiError } from '@/lib/api-client';

import { ErrorMessage } from './error-message';

describe('<ErrorMessage>', () => {
  it('shows the failing fields of validation_failed', () => {
    const error = new ApiError(422, {
      code: 'validation_failed',
      message: 'payload.email: too short',
      details: { fields: [{ path: 'payload.email', message: 'Expected a string of at least 3 characters' }] },
    });
    render(<ErrorMessage error={error} />);
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('Some of the information needs fixing:');
    expect(alert).toHaveTextContent('Email: Expected a string of at least 3 characters');
  });

  it('shows the retry time of rate_limited', () => {
    render(<ErrorMessage error={new ApiError(429, { code: 'rate_limited', message: '', details: { retryAfter: 30 } }, 30)} />);
    expect(screen.getByRole('alert')).toHaveTextContent('Please try again in 30 seconds.');
  });
});
