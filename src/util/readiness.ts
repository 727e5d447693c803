/** One line of `/readyz`: what it checked and whether it holds. */
export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
  /** false: reported, but does not make the instance unready. */
  required?: boolean;
}
