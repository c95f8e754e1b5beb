/* kinds.h: every layer kind, one line each (the name of its af_layer_ops is af_op_<kind>).
 * Included by graph.c with AF_KIND defined to declare and to list them. */
AF_KIND(input)
AF_KIND(dense)
AF_KIND(batchnorm)
AF_KIND(dropout)
AF_KIND(activation)
AF_KIND(add)
AF_KIND(concatenate)
AF_KIND(flatten)
AF_KIND(reshape)
AF_KIND(embedding)
AF_KIND(global_avg_pool1d)
